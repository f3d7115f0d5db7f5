// Graph-building helpers: unique tensor names, typed wrappers for the opset-17 ops the decoder uses,
// small constants embedded in the protobuf, and large weights laid out as ORT external data files.
// It must never know about transformer architectures (that is decoder.ts) or import ORT.

import {
  DataType,
  encodeModel,
  type AttributeInit,
  type Dim,
  type NodeInit,
  type TensorInit,
  type ValueInfo,
} from './proto';

/** One external data file, as ORT's `SessionOptions.externalData` takes it. */
export interface ExternalDataFile {
  path: string;
  data: Uint8Array;
}

export interface BuiltModel {
  model: Uint8Array;
  externalData: ExternalDataFile[];
}

/**
 * Where `buildTo` writes the external data: one tensor at a time, each at its offset of its file (in
 * increasing offset order per file; the gaps of the alignment are never written, so they read as
 * zeros). A file sink (the CLI's graph cache) never holds the whole external data in memory.
 */
export interface ExternalDataSink {
  write(path: string, offset: number, data: Uint8Array): void | Promise<void>;
}

/** Where one external initializer's bytes are. */
export interface TensorPlace {
  name: string;
  path: string;
  offset: number;
  length: number;
}

/** What `buildTo` gives: the protobuf, the external files' sizes and where each tensor lies in them. */
export interface BuiltModelFiles {
  model: Uint8Array;
  externalFiles: { path: string; size: number }[];
  tensors: TensorPlace[];
}

export interface GraphBuilderOptions {
  /** file name prefix of the external data files; the first is `${prefix}`, then `${prefix}.1`, … */
  externalPath?: string;
  /** weights at or above this many bytes go to external data (default 1 KiB) */
  externalThreshold?: number;
  /** start a new external file past this size (default 1 GiB: one ArrayBuffer each, far below 2 GB) */
  externalChunkBytes?: number;
  /**
   * byte alignment of each external tensor's offset (default 64); 4096 (a page) for a file ORT maps
   * (`buildTo`): the tensors' bytes are the same, only their offsets move
   */
  externalAlign?: number;
}

/**
 * Bytes of one weight, written straight into its place (external file or raw_data) when the graph is
 * built, so no intermediate copy exists. A write may be asynchronous (reading the tensor from a file
 * then); only `buildAsync` accepts those.
 */
export interface WeightSource {
  dataType: DataType;
  dims: readonly number[];
  byteLength: number;
  write(dst: Uint8Array): void | Promise<void>;
}

interface PendingWrite {
  /** external file index, or -1 for a small weight written into `raw` */
  file: number;
  offset: number;
  raw?: Uint8Array;
  source: WeightSource;
}

const ALIGN = 64;

/** The page-sized alignment of a graph built into a file, so ORT can map each initializer in place. */
export const FILE_ALIGN = 4096;

export function float32Source(dims: readonly number[], data: Float32Array): WeightSource {
  return {
    dataType: DataType.FLOAT,
    dims,
    byteLength: data.byteLength,
    write: (dst) => dst.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)),
  };
}

/** Raw bytes (uint8 codes, or any little-endian payload) as a weight of the given type and dims. */
export function bytesSource(
  dataType: DataType,
  dims: readonly number[],
  data: ArrayBufferView,
): WeightSource {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { dataType, dims, byteLength: bytes.byteLength, write: (dst) => dst.set(bytes) };
}

function bytesOfFloat32(values: ArrayLike<number>): Uint8Array {
  const f = Float32Array.from(values);
  return new Uint8Array(f.buffer);
}

function bytesOfInt64(values: readonly number[]): Uint8Array {
  const b = BigInt64Array.from(values.map((v) => BigInt(v)));
  return new Uint8Array(b.buffer);
}

export class GraphBuilder {
  private readonly nodes: NodeInit[] = [];
  private readonly initializers: TensorInit[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly used = new Set<string>();
  private readonly constCache = new Map<string, string>();
  private readonly pending: PendingWrite[] = [];
  private readonly fileSizes: number[] = [0];
  private counter = 0;
  private readonly externalPath: string;
  private readonly externalThreshold: number;
  private readonly chunkBytes: number;
  private readonly align: number;

  constructor(opts: GraphBuilderOptions = {}) {
    this.externalPath = opts.externalPath ?? 'model.onnx.data';
    this.externalThreshold = opts.externalThreshold ?? 1024;
    this.chunkBytes = opts.externalChunkBytes ?? 1 << 30;
    this.align = opts.externalAlign ?? ALIGN;
  }

  /** A fresh tensor name; `want` is used verbatim when given (graph IO names), else made unique. */
  name(hint: string, want?: string): string {
    if (want !== undefined) {
      if (this.used.has(want)) throw new Error(`graph name used twice: ${want}`);
      this.used.add(want);
      return want;
    }
    let n: string;
    do n = `${hint}_${this.counter++}`;
    while (this.used.has(n));
    this.used.add(n);
    return n;
  }

  input(name: string, elemType: DataType, shape: readonly Dim[]): string {
    this.inputs.push({ name: this.name(name, name), elemType, shape });
    return name;
  }

  /** Declares an existing tensor (a node output) as a graph output. */
  output(name: string, elemType: DataType, shape: readonly Dim[]): void {
    this.outputs.push({ name, elemType, shape });
  }

  /** Adds a node; returns its output names. */
  node(
    opType: string,
    inputs: readonly string[],
    opts: {
      attrs?: AttributeInit[];
      outputs?: number;
      names?: readonly (string | undefined)[];
      /** operator set domain, e.g. `com.microsoft` for ORT's contrib ops (default: the ONNX domain) */
      domain?: string;
    } = {},
  ): string[] {
    const count = opts.outputs ?? 1;
    const outs: string[] = [];
    for (let i = 0; i < count; i++) outs.push(this.name(opType, opts.names?.[i]));
    this.nodes.push({
      opType,
      inputs,
      outputs: outs,
      name: `n:${outs[0]}`,
      attributes: opts.attrs,
      domain: opts.domain,
    });
    return outs;
  }

  /** Single-output node. `out` names the result (for graph outputs). */
  op(opType: string, inputs: readonly string[], attrs?: AttributeInit[], out?: string): string {
    return this.node(opType, inputs, { attrs, names: [out] })[0];
  }

  // --- constants -------------------------------------------------------------------------------

  private smallConst(key: string, t: Omit<TensorInit, 'name'>): string {
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.name('const');
    this.initializers.push({ ...t, name });
    this.constCache.set(key, name);
    return name;
  }

  /** float32 constant; a scalar when dims is [] */
  constF32(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.smallConst(`f32:${dims.join(',')}:${values.join(',')}`, {
      dataType: DataType.FLOAT,
      dims,
      raw: bytesOfFloat32(values),
    });
  }

  /** int64 constant; a scalar when dims is [] */
  constI64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.smallConst(`i64:${dims.join(',')}:${values.join(',')}`, {
      dataType: DataType.INT64,
      dims,
      raw: bytesOfInt64(values),
    });
  }

  /** A weight initializer: external data when large, raw_data otherwise. */
  weight(name: string, source: WeightSource): string {
    const n = this.name(name, name);
    if (source.byteLength < this.externalThreshold) {
      // NOTE: written at build time like the external ones, so a source may read its tensor lazily
      const raw = new Uint8Array(source.byteLength);
      this.pending.push({ file: -1, offset: 0, raw, source });
      this.initializers.push({ name: n, dataType: source.dataType, dims: source.dims, raw });
      return n;
    }
    let file = this.fileSizes.length - 1;
    let offset = Math.ceil(this.fileSizes[file] / this.align) * this.align;
    if (offset > 0 && offset + source.byteLength > this.chunkBytes) {
      this.fileSizes.push(0);
      file++;
      offset = 0;
    }
    this.fileSizes[file] = offset + source.byteLength;
    this.pending.push({ file, offset, source });
    this.initializers.push({
      name: n,
      dataType: source.dataType,
      dims: source.dims,
      external: { location: this.filePath(file), offset, length: source.byteLength },
    });
    return n;
  }

  private filePath(file: number): string {
    return file === 0 ? this.externalPath : `${this.externalPath}.${file}`;
  }

  // --- typed op wrappers -----------------------------------------------------------------------

  add(a: string, b: string, out?: string): string {
    return this.op('Add', [a, b], undefined, out);
  }
  sub(a: string, b: string, out?: string): string {
    return this.op('Sub', [a, b], undefined, out);
  }
  mul(a: string, b: string, out?: string): string {
    return this.op('Mul', [a, b], undefined, out);
  }
  div(a: string, b: string, out?: string): string {
    return this.op('Div', [a, b], undefined, out);
  }
  matmul(a: string, b: string, out?: string): string {
    return this.op('MatMul', [a, b], undefined, out);
  }
  /** Gemm on 2-D a with b transposed: a · bᵀ (b stored [N, K]). */
  gemmTransB(a: string, b: string, out?: string): string {
    return this.op('Gemm', [a, b], [{ name: 'transB', type: 'int', value: 1 }], out);
  }
  reshape(x: string, shape: readonly number[], out?: string): string {
    return this.op('Reshape', [x, this.constI64(shape)], undefined, out);
  }
  reshapeTo(x: string, shape: string, out?: string): string {
    return this.op('Reshape', [x, shape], undefined, out);
  }
  transpose(x: string, perm: readonly number[], out?: string): string {
    return this.op('Transpose', [x], [{ name: 'perm', type: 'ints', value: perm }], out);
  }
  concat(xs: readonly string[], axis: number, out?: string): string {
    return this.op('Concat', xs, [{ name: 'axis', type: 'int', value: axis }], out);
  }
  /** Equal split into `parts` along `axis` (opset 13–17 semantics without the split input). */
  split(x: string, axis: number, parts: number): string[] {
    return this.node('Split', [x], { attrs: [{ name: 'axis', type: 'int', value: axis }], outputs: parts });
  }
  gather(data: string, indices: string, axis = 0, out?: string): string {
    return this.op('Gather', [data, indices], [{ name: 'axis', type: 'int', value: axis }], out);
  }
  softmax(x: string, axis: number, out?: string): string {
    return this.op('Softmax', [x], [{ name: 'axis', type: 'int', value: axis }], out);
  }
  sigmoid(x: string, out?: string): string {
    return this.op('Sigmoid', [x], undefined, out);
  }
  sqrt(x: string, out?: string): string {
    return this.op('Sqrt', [x], undefined, out);
  }
  /** ReduceMean with keepdims (opset 17: axes is an attribute). */
  reduceMean(x: string, axes: readonly number[], out?: string): string {
    return this.op(
      'ReduceMean',
      [x],
      [
        { name: 'axes', type: 'ints', value: axes },
        { name: 'keepdims', type: 'int', value: 1 },
      ],
      out,
    );
  }
  unsqueeze(x: string, axes: readonly number[], out?: string): string {
    return this.op('Unsqueeze', [x, this.constI64(axes)], undefined, out);
  }
  squeeze(x: string, axes: readonly number[], out?: string): string {
    return this.op('Squeeze', [x, this.constI64(axes)], undefined, out);
  }
  /** Shape(x)[start:end] as int64 [end-start] */
  shape(x: string, start: number, end: number, out?: string): string {
    return this.op(
      'Shape',
      [x],
      [
        { name: 'start', type: 'int', value: start },
        { name: 'end', type: 'int', value: end },
      ],
      out,
    );
  }
  cast(x: string, to: DataType, out?: string): string {
    return this.op('Cast', [x], [{ name: 'to', type: 'int', value: to }], out);
  }
  range(start: string, limit: string, delta: string, out?: string): string {
    return this.op('Range', [start, limit, delta], undefined, out);
  }
  clip(x: string, min: string, max: string, out?: string): string {
    return this.op('Clip', [x, min, max], undefined, out);
  }
  slice(x: string, starts: string, ends: string, axes: readonly number[], out?: string): string {
    return this.op('Slice', [x, starts, ends, this.constI64(axes)], undefined, out);
  }

  // --- output ----------------------------------------------------------------------------------

  /**
   * The protobuf and the external data, every weight written in declaration order. Synchronous: every
   * source's write must be too (use `buildAsync` for sources that read their tensor from a file).
   */
  build(opsets: { domain: string; version: number }[] = [{ domain: '', version: 17 }]): BuiltModel {
    const files = this.allocate();
    for (const p of this.pending) {
      const r = p.source.write(this.destination(files, p));
      if (r instanceof Promise) throw new Error('a weight source wrote asynchronously: use buildAsync');
    }
    return this.finish(opsets, files);
  }

  /**
   * As `build`, awaiting each write before the next, so a source that reads and converts its tensor
   * holds one tensor at a time; `onWrite` is told after each weight (done of total, bytes so far).
   */
  async buildAsync(
    opsets: { domain: string; version: number }[] = [{ domain: '', version: 17 }],
    onWrite?: (done: number, total: number, bytes: number) => void,
  ): Promise<BuiltModel> {
    const files = this.allocate();
    let bytes = 0;
    for (let i = 0; i < this.pending.length; i++) {
      const p = this.pending[i];
      await p.source.write(this.destination(files, p));
      bytes += p.source.byteLength;
      onWrite?.(i + 1, this.pending.length, bytes);
    }
    return this.finish(opsets, files);
  }

  /**
   * As `buildAsync`, but each external weight is written into one reused scratch buffer (as large as
   * the largest weight) and handed to `sink` before the next, so the whole external data never exists
   * in memory; the small weights go into the protobuf as before. Same tensors, same bytes.
   */
  async buildTo(
    sink: ExternalDataSink,
    opsets: { domain: string; version: number }[] = [{ domain: '', version: 17 }],
    onWrite?: (done: number, total: number, bytes: number) => void,
  ): Promise<BuiltModelFiles> {
    const largest = this.pending.reduce((m, p) => (p.raw ? m : Math.max(m, p.source.byteLength)), 0);
    let scratch: Uint8Array | null = largest > 0 ? new Uint8Array(largest) : null;
    const tensors: TensorPlace[] = [];
    let bytes = 0;
    for (let i = 0; i < this.pending.length; i++) {
      const p = this.pending[i];
      if (p.raw) await p.source.write(p.raw);
      else {
        const dst = scratch!.subarray(0, p.source.byteLength);
        await p.source.write(dst);
        await sink.write(this.filePath(p.file), p.offset, dst);
      }
      bytes += p.source.byteLength;
      onWrite?.(i + 1, this.pending.length, bytes);
    }
    scratch = null;
    for (const t of this.initializers) {
      if (t.external) {
        const { location, offset, length } = t.external;
        tensors.push({ name: t.name, path: location, offset, length });
      }
    }
    const external = this.pending.some((p) => p.file >= 0);
    return {
      model: this.encode(opsets),
      externalFiles: external ? this.fileSizes.map((size, i) => ({ path: this.filePath(i), size })) : [],
      tensors,
    };
  }

  private allocate(): Uint8Array[] {
    return this.fileSizes.map((size) => new Uint8Array(size));
  }

  private destination(files: Uint8Array[], p: PendingWrite): Uint8Array {
    if (p.raw) return p.raw;
    return files[p.file].subarray(p.offset, p.offset + p.source.byteLength);
  }

  private encode(opsets: { domain: string; version: number }[]): Uint8Array {
    return encodeModel({
      opsets,
      graph: {
        name: 'piggyback',
        nodes: this.nodes,
        initializers: this.initializers,
        inputs: this.inputs,
        outputs: this.outputs,
      },
    });
  }

  private finish(opsets: { domain: string; version: number }[], files: Uint8Array[]): BuiltModel {
    const model = this.encode(opsets);
    const external = this.pending.some((p) => p.file >= 0);
    const externalData = external ? files.map((data, i) => ({ path: this.filePath(i), data })) : [];
    return { model, externalData };
  }
}
