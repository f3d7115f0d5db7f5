// A minimal ONNX protobuf writer: just the messages and fields the decoder graph needs (model, graph,
// node, attribute, tensor with raw or external data, value info with symbolic dims), encoded by hand.
// It must never parse, validate graph semantics or know about models: it serialises what it is given.

/** ONNX TensorProto.DataType values used here. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
} as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

/** Where an initializer's bytes live when they are not inside the protobuf. */
export interface ExternalRef {
  /** file name as the runtime will see it (ORT `externalData[].path`) */
  location: string;
  offset: number;
  length: number;
}

export interface TensorInit {
  name: string;
  dataType: DataType;
  dims: readonly number[];
  /** little-endian bytes, embedded as raw_data */
  raw?: Uint8Array;
  /** bytes in an external file (data_location = EXTERNAL) */
  external?: ExternalRef;
}

/** A dimension: a fixed size or a symbolic name such as `batch`. */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  elemType: DataType;
  shape: readonly Dim[];
}

export type AttributeInit =
  | { name: string; type: 'int'; value: number }
  | { name: string; type: 'float'; value: number }
  | { name: string; type: 'string'; value: string }
  | { name: string; type: 'ints'; value: readonly number[] }
  | { name: string; type: 'floats'; value: readonly number[] }
  | { name: string; type: 'tensor'; value: TensorInit };

export interface NodeInit {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  domain?: string;
  attributes?: readonly AttributeInit[];
}

export interface GraphInit {
  name: string;
  nodes: readonly NodeInit[];
  initializers: readonly TensorInit[];
  inputs: readonly ValueInfo[];
  outputs: readonly ValueInfo[];
}

export interface OpsetId {
  domain: string;
  version: number;
}

export interface ModelInit {
  graph: GraphInit;
  opsets: readonly OpsetId[];
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
}

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const textEncoder = new TextEncoder();

/** Growable byte sink with protobuf primitives. */
export class ProtoWriter {
  private buf = new Uint8Array(256);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Unsigned or non-negative varint; negative numbers are written as 64-bit two's complement. */
  varint(value: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(value));
    if (typeof value === 'number' && !Number.isInteger(value)) {
      throw new RangeError(`varint of a non-integer: ${value}`);
    }
    this.reserve(10);
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
    return this;
  }

  private tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WIRE_LEN).varint(data.length);
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, textEncoder.encode(s));
  }

  int(field: number, v: number | bigint): this {
    return this.tag(field, WIRE_VARINT).varint(v);
  }

  float(field: number, v: number): this {
    this.tag(field, WIRE_FIXED32);
    this.reserve(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, v, true);
    this.len += 4;
    return this;
  }

  packedInts(field: number, vs: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of vs) inner.varint(v);
    return this.bytes(field, inner.finish());
  }

  packedFloats(field: number, vs: readonly number[]): this {
    const data = new Uint8Array(vs.length * 4);
    const view = new DataView(data.buffer);
    vs.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return this.bytes(field, data);
  }

  message(field: number, write: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    write(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

// Field numbers from onnx.proto3.
function writeTensor(w: ProtoWriter, t: TensorInit): void {
  if (t.dims.length > 0) w.packedInts(1, t.dims);
  w.int(2, t.dataType);
  w.string(8, t.name);
  if (t.raw && t.external) throw new Error(`tensor ${t.name}: both raw and external data`);
  if (t.raw) w.bytes(9, t.raw);
  if (t.external) {
    const ext = t.external;
    const entries: [string, string][] = [
      ['location', ext.location],
      ['offset', String(ext.offset)],
      ['length', String(ext.length)],
    ];
    for (const [key, value] of entries) {
      w.message(13, (e) => e.string(1, key).string(2, value));
    }
    w.int(14, 1); // data_location = EXTERNAL
  }
}

const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

function writeAttribute(w: ProtoWriter, a: AttributeInit): void {
  w.string(1, a.name);
  switch (a.type) {
    case 'float':
      w.float(2, a.value);
      break;
    case 'int':
      w.int(3, a.value);
      break;
    case 'string':
      w.string(4, a.value);
      break;
    case 'tensor':
      w.message(5, (t) => writeTensor(t, a.value));
      break;
    case 'floats':
      w.packedFloats(7, a.value);
      break;
    case 'ints':
      w.packedInts(8, a.value);
      break;
  }
  w.int(20, ATTR_TYPE[a.type]);
}

function writeNode(w: ProtoWriter, n: NodeInit): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attributes ?? []) w.message(5, (aw) => writeAttribute(aw, a));
  if (n.domain) w.string(7, n.domain);
}

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.elemType);
      tensor.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

function writeGraph(w: ProtoWriter, g: GraphInit): void {
  for (const n of g.nodes) w.message(1, (nw) => writeNode(nw, n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, (tw) => writeTensor(tw, t));
  for (const v of g.inputs) w.message(11, (vw) => writeValueInfo(vw, v));
  for (const v of g.outputs) w.message(12, (vw) => writeValueInfo(vw, v));
}

/** Serialises a ModelProto (IR version 8 unless told otherwise). */
export function encodeModel(m: ModelInit): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, m.irVersion ?? 8);
  w.string(2, m.producerName ?? 'piggyback-lab');
  if (m.producerVersion) w.string(3, m.producerVersion);
  w.message(7, (gw) => writeGraph(gw, m.graph));
  for (const o of m.opsets) {
    w.message(8, (ow) => {
      if (o.domain) ow.string(1, o.domain);
      ow.int(2, o.version);
    });
  }
  return w.finish();
}
