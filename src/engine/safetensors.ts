// Safetensors reader (single file and sharded index) with a fully bounds-checked header, plus the
// float conversions it needs (bf16/f16 → f32, f32 → f16) and a tiny writer for tests and fixtures.
// Must never trust the header (tensors must tile the data region exactly, as the Rust reference
// requires), never read the whole file when one tensor is asked for, and never import Node or
// DOM-only APIs (Blob is used only when the caller hands one in).

import { isObject } from '../common/json';
import { EngineError } from './errors';
import type { Tensor } from './types';

/** Random access to one file's bytes. Node file handles and HTTP range requests implement it too. */
export interface RandomAccessReader {
  readonly size: number;
  /** exactly `length` bytes starting at `offset`; may return a view, so callers must not mutate it */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/**
 * The one bounds-checked RandomAccessReader every kind of file builds on (memory, Blob, disk, HTTP
 * ranges, the download cache): a read outside `[0, size)` is `truncated_file` naming `label`, an empty
 * read never reaches `readAt`, and fewer bytes than asked for (a file that shrank, a short range
 * answer) is `truncated_file` too — so `readAt` only fetches.
 */
export function checkedReader(
  size: number,
  label: string | undefined,
  readAt: (offset: number, length: number) => Promise<Uint8Array> | Uint8Array,
): RandomAccessReader {
  const where = label ? `${label}: ` : '';
  return {
    size,
    async read(offset, length) {
      if (
        !Number.isSafeInteger(offset) ||
        !Number.isSafeInteger(length) ||
        offset < 0 ||
        length < 0 ||
        offset + length > size
      ) {
        throw new EngineError(
          'truncated_file',
          `${where}read of ${length} bytes at ${offset} runs past the end (${size} bytes)`,
          { file: label, offset, length, size },
        );
      }
      if (length === 0) return new Uint8Array(0);
      const bytes = await readAt(offset, length);
      if (bytes.byteLength !== length) {
        throw new EngineError(
          'truncated_file',
          `${where}asked for ${length} bytes at ${offset}, got ${bytes.byteLength}: the file is shorter than ${size} bytes (it changed or was cut while being read)`,
          { file: label, offset, length, size, got: bytes.byteLength },
        );
      }
      return bytes;
    },
  };
}

export type SafetensorsDtype =
  'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL' | 'F8_E4M3' | 'F8_E5M2';

export const DTYPE_SIZE: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** Dtypes `read` / `readF16` convert; the others are reachable only as raw bytes (`readBytes`). */
export const FLOAT_DTYPES: ReadonlySet<SafetensorsDtype> = new Set<SafetensorsDtype>([
  'F64',
  'F32',
  'F16',
  'BF16',
]);

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** byte range relative to the start of the data region (the header's `data_offsets`) */
  begin: number;
  end: number;
  /** the file this tensor lives in (shard name, or the name given to `openSafetensors`) */
  file: string;
}

/** fp16 bits, row-major; for uploading fp16 weights to a GPU without a float round trip. */
export interface F16Tensor {
  shape: number[];
  data: Uint16Array;
}

export interface ReadOptions {
  /** refuse with `shape_mismatch` unless the stored shape equals this */
  expectShape?: readonly number[];
}

/** A set of named tensors, from one file or several shards. */
export interface TensorStore {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  /** any float dtype, converted to fp32 */
  read(name: string, opts?: ReadOptions): Promise<Tensor>;
  /** any float dtype, as fp16 bits (F16 copied; F32/BF16/F64 rounded to nearest even) */
  readF16(name: string, opts?: ReadOptions): Promise<F16Tensor>;
  /** the stored bytes, any dtype, little-endian as in the file */
  readBytes(name: string): Promise<Uint8Array>;
}

export type SafetensorsInput = RandomAccessReader | ArrayBuffer | Uint8Array | Blob;

/** Header sizes beyond this are refused before allocating (the format's own limit is 100 MB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Readers

export function bufferReader(buf: ArrayBuffer | Uint8Array, label?: string): RandomAccessReader {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  return checkedReader(bytes.byteLength, label, (offset, length) => bytes.subarray(offset, offset + length));
}

/** Reads slices of a Blob/File, so a multi-GB file is never held in memory whole. */
export function blobReader(blob: Blob, label?: string): RandomAccessReader {
  return checkedReader(
    blob.size,
    label,
    async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()),
  );
}

function toReader(input: SafetensorsInput): RandomAccessReader {
  if (input instanceof ArrayBuffer || input instanceof Uint8Array) return bufferReader(input);
  if (typeof Blob !== 'undefined' && input instanceof Blob) return blobReader(input);
  return input as RandomAccessReader;
}

// ---------------------------------------------------------------------------------------------
// Header parsing

function isDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

/**
 * Validates a parsed header against a data region of `dataLength` bytes. Exported for tests and for
 * callers that obtained the header some other way.
 */
export function parseHeader(
  header: unknown,
  dataLength: number,
  file: string,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  if (!isObject(header)) {
    throw new EngineError('bad_header', `${file}: header is not a JSON object`, { file });
  }
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isObject(entry) || !Object.values(entry).every((v) => typeof v === 'string')) {
        throw new EngineError('bad_header', `${file}: __metadata__ must map strings to strings`, { file });
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    if (!isObject(entry)) {
      throw new EngineError('bad_header', `${file}: entry ${name} is not an object`, { file, tensor: name });
    }
    const { dtype, shape, data_offsets: offsets } = entry;
    if (!isDtype(dtype)) {
      throw new EngineError('unknown_dtype', `${file}: tensor ${name} has unknown dtype ${String(dtype)}`, {
        file,
        tensor: name,
        dtype,
      });
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw new EngineError('bad_header', `${file}: tensor ${name} has an invalid shape`, {
        file,
        tensor: name,
        shape,
      });
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
    ) {
      throw new EngineError('bad_header', `${file}: tensor ${name} has invalid data_offsets`, {
        file,
        tensor: name,
        offsets,
      });
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) {
      throw new EngineError('offset_out_of_range', `${file}: tensor ${name} has begin > end`, {
        file,
        tensor: name,
        begin,
        end,
      });
    }
    const dims = shape as number[];
    const expected = dims.reduce((a, d) => a * d, 1) * DTYPE_SIZE[dtype];
    if (expected !== end - begin) {
      throw new EngineError(
        'shape_mismatch',
        `${file}: tensor ${name} is ${dtype}[${dims.join(',')}] = ${expected} bytes but spans ${end - begin}`,
        { file, tensor: name, expected, got: end - begin },
      );
    }
    tensors.set(name, { name, dtype, shape: [...dims], begin, end, file });
  }

  // Overlap and range checks on the sorted spans. Empty tensors occupy no bytes and cannot overlap.
  const spans = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i].begin < spans[i - 1].end) {
      throw new EngineError(
        'overlapping_tensors',
        `${file}: tensors ${spans[i - 1].name} and ${spans[i].name} overlap`,
        {
          file,
          tensor: spans[i].name,
          other: spans[i - 1].name,
        },
      );
    }
  }
  const beyond = spans.filter((t) => t.end > dataLength);
  if (beyond.length > 0) {
    // NOTE: a header describing a gap-free packed layout that simply runs past EOF is a cut-off
    // download; anything else pointing outside the data region is a corrupt header.
    const packed = spans.every((t, i) => t.begin === (i === 0 ? 0 : spans[i - 1].end));
    const needed = spans[spans.length - 1].end;
    if (packed) {
      throw new EngineError(
        'truncated_file',
        `${file}: data region has ${dataLength} bytes, header needs ${needed}`,
        {
          file,
          expected: needed,
          got: dataLength,
          tensor: beyond[0].name,
        },
      );
    }
    throw new EngineError(
      'offset_out_of_range',
      `${file}: tensor ${beyond[0].name} ends at ${beyond[0].end}, beyond the ${dataLength}-byte data region`,
      { file, tensor: beyond[0].name, end: beyond[0].end, dataLength },
    );
  }
  checkCoverage([...tensors.values()], dataLength, file);
  return { tensors, metadata };
}

/**
 * The reference implementation's rule (the Rust safetensors crate, `Metadata::validate` and
 * `read_metadata`): sorted by offsets, every tensor starts where the previous one ended — empty ones
 * included — and the last ends at the end of the file. A gap or trailing bytes means the header does
 * not describe this data region (a header length a few bytes off shifts every weight), so it is refused.
 */
function checkCoverage(all: TensorInfo[], dataLength: number, file: string): void {
  const sorted = all.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: TensorInfo | null = null;
  for (const t of sorted) {
    if (t.begin > cursor) {
      throw new EngineError(
        'uncovered_bytes',
        `${file}: bytes [${cursor}, ${t.begin}) of the data region belong to no tensor ` +
          `(a gap ${previous ? `between ${previous.name} and ${t.name}` : `before ${t.name}`}): the header does not describe this data`,
        { file, tensor: t.name, begin: cursor, end: t.begin },
      );
    }
    if (t.begin < cursor) {
      throw new EngineError(
        'overlapping_tensors',
        `${file}: tensor ${t.name} at ${t.begin} lies inside ${previous?.name ?? 'another tensor'}, which ends at ${cursor}`,
        { file, tensor: t.name, other: previous?.name },
      );
    }
    cursor = t.end;
    previous = t;
  }
  if (cursor !== dataLength) {
    throw new EngineError(
      'uncovered_bytes',
      `${file}: the data region has ${dataLength} bytes but its tensors end at ${cursor}: ` +
        `${dataLength - cursor} trailing bytes belong to no tensor (a wrong header length, or a corrupt file)`,
      { file, begin: cursor, end: dataLength, dataLength },
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Opening

export interface SafetensorsFile extends TensorStore {
  readonly file: string;
  /** absolute byte offset of the data region (8 + header length) */
  readonly dataOffset: number;
}

export async function openSafetensors(
  input: SafetensorsInput,
  file = 'model.safetensors',
): Promise<SafetensorsFile> {
  const reader = toReader(input);
  if (reader.size < 8) {
    throw new EngineError(
      'truncated_file',
      `${file}: ${reader.size} bytes, too short for a safetensors header`,
      {
        file,
        size: reader.size,
      },
    );
  }
  const lenBytes = await reader.read(0, 8);
  const view = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES) || headerLen64 > BigInt(reader.size - 8)) {
    throw new EngineError(
      'header_too_large',
      `${file}: header length ${headerLen64} does not fit a ${reader.size}-byte file`,
      { file, headerLength: headerLen64.toString(), size: reader.size },
    );
  }
  const headerLen = Number(headerLen64);
  const headerBytes = await reader.read(8, headerLen);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw new EngineError('bad_header', `${file}: header is not valid UTF-8 JSON`, {
      file,
      cause: String(e),
    });
  }
  const dataOffset = 8 + headerLen;
  const { tensors, metadata } = parseHeader(header, reader.size - dataOffset, file);

  const info = (name: string): TensorInfo => {
    const t = tensors.get(name);
    if (!t) throw new EngineError('missing_tensor', `${file}: no tensor ${name}`, { file, tensor: name });
    return t;
  };
  const readBytes = async (name: string): Promise<Uint8Array> => {
    const t = info(name);
    return reader.read(dataOffset + t.begin, t.end - t.begin);
  };
  return {
    file,
    dataOffset,
    tensors,
    metadata,
    readBytes,
    async read(name, opts) {
      const t = info(name);
      checkShape(t, opts);
      return { shape: [...t.shape], data: decodeF32(t, await readBytes(name)) };
    },
    async readF16(name, opts) {
      const t = info(name);
      checkShape(t, opts);
      return { shape: [...t.shape], data: decodeF16(t, await readBytes(name)) };
    },
  };
}

function checkShape(t: TensorInfo, opts: ReadOptions | undefined): void {
  const want = opts?.expectShape;
  if (want && (want.length !== t.shape.length || want.some((d, i) => d !== t.shape[i]))) {
    throw new EngineError(
      'shape_mismatch',
      `${t.file}: tensor ${t.name} has shape [${t.shape.join(',')}], expected [${want.join(',')}]`,
      { file: t.file, tensor: t.name, expected: [...want], got: [...t.shape] },
    );
  }
}

/** Index file contents of a sharded checkpoint. */
export interface ShardIndex {
  metadata?: Record<string, unknown>;
  weight_map: Record<string, string>;
}

export function parseShardIndex(json: unknown, file = 'model.safetensors.index.json'): ShardIndex {
  if (!isObject(json) || !isObject(json.weight_map)) {
    throw new EngineError('bad_header', `${file}: no weight_map object`, { file });
  }
  for (const [name, shard] of Object.entries(json.weight_map)) {
    if (typeof shard !== 'string' || shard.length === 0 || shard.includes('..')) {
      throw new EngineError('bad_header', `${file}: weight_map[${name}] is not a shard file name`, {
        file,
        tensor: name,
      });
    }
  }
  return json as unknown as ShardIndex;
}

/**
 * Opens every shard named by an index and presents them as one store. Each tensor must exist in the
 * shard the index names; tensors a shard holds but the index does not list are ignored (as HF does).
 */
export async function openShardedSafetensors(
  index: unknown,
  openShard: (file: string) => Promise<SafetensorsInput>,
  indexFile = 'model.safetensors.index.json',
): Promise<TensorStore> {
  const { weight_map: weightMap } = parseShardIndex(index, indexFile);
  const shardNames = [...new Set(Object.values(weightMap))].sort();
  const shards = new Map<string, SafetensorsFile>();
  for (const name of shardNames) shards.set(name, await openSafetensors(await openShard(name), name));
  const owner = new Map<string, SafetensorsFile>();
  const tensors = new Map<string, TensorInfo>();
  for (const [name, shardName] of Object.entries(weightMap)) {
    const shard = shards.get(shardName) as SafetensorsFile;
    const t = shard.tensors.get(name);
    if (!t) {
      throw new EngineError('missing_tensor', `${shardName} lacks ${name}, which ${indexFile} places there`, {
        file: shardName,
        tensor: name,
      });
    }
    owner.set(name, shard);
    tensors.set(name, t);
  }
  const metadata: Record<string, string> = {};
  for (const s of shards.values()) Object.assign(metadata, s.metadata);
  const shardOf = (name: string): SafetensorsFile => {
    const s = owner.get(name);
    if (!s)
      throw new EngineError('missing_tensor', `no tensor ${name} in ${indexFile}`, {
        file: indexFile,
        tensor: name,
      });
    return s;
  };
  return {
    tensors,
    metadata,
    // async so that an unknown name rejects rather than throws
    read: async (name, opts) => shardOf(name).read(name, opts),
    readF16: async (name, opts) => shardOf(name).readF16(name, opts),
    readBytes: async (name) => shardOf(name).readBytes(name),
  };
}

// ---------------------------------------------------------------------------------------------
// Conversions (little-endian hosts only, like every browser and Node target we run on)

/** Copies into a fresh buffer when `bytes` is not aligned for `align`-byte elements. */
function aligned(bytes: Uint8Array, align: number): Uint8Array {
  return bytes.byteOffset % align === 0 ? bytes : bytes.slice();
}

let f16Table: Float32Array | null = null;

function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) {
      // zero or subnormal: mant · 2^-24, exact in fp32
      table[h] = mant * 2 ** -24 * (sign ? -1 : 1);
      if (mant === 0) bits[h] = sign;
    } else if (exp === 0x1f) {
      bits[h] = sign | 0x7f800000 | (mant << 13); // inf, or NaN keeping its payload
    } else {
      bits[h] = sign | ((exp + 112) << 23) | (mant << 13);
    }
  }
  f16Table = table;
  return table;
}

/** IEEE binary16 bits → fp32 values (exact: every f16 value is representable in fp32). */
export function f16ToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const table = f16ToF32Table();
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
  return out;
}

/** bfloat16 bits → fp32 values (exact: bf16 is the top half of an fp32). */
export function bf16ToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return out;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** One number → binary16 bits, rounding to nearest even (NaN stays NaN, overflow → ±inf). */
export function f32ToF16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half; // a carry into the exponent field yields the smallest normal, as it should
  }
  let bits = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && bits & 1)) bits++; // may carry into exp, up to inf
  return sign | bits;
}

export function f32ToF16(src: ArrayLike<number>, out = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]);
  return out;
}

function requireFloat(t: TensorInfo): void {
  if (!FLOAT_DTYPES.has(t.dtype)) {
    throw new EngineError('unknown_dtype', `${t.file}: tensor ${t.name} is ${t.dtype}, not a float dtype`, {
      file: t.file,
      tensor: t.name,
      dtype: t.dtype,
    });
  }
}

function decodeF32(t: TensorInfo, raw: Uint8Array): Float32Array {
  requireFloat(t);
  const n = (t.end - t.begin) / DTYPE_SIZE[t.dtype];
  switch (t.dtype) {
    case 'F32': {
      const b = aligned(raw, 4);
      return new Float32Array(b.buffer, b.byteOffset, n).slice();
    }
    case 'F16': {
      const b = aligned(raw, 2);
      return f16ToF32(new Uint16Array(b.buffer, b.byteOffset, n));
    }
    case 'BF16': {
      const b = aligned(raw, 2);
      return bf16ToF32(new Uint16Array(b.buffer, b.byteOffset, n));
    }
    default: {
      const b = aligned(raw, 8);
      return Float32Array.from(new Float64Array(b.buffer, b.byteOffset, n));
    }
  }
}

/**
 * A float tensor's stored bytes decoded to fp32 into `out` (its element count): no fresh memory, so a
 * loader can decode every tensor into one reused buffer or straight into its final place.
 */
export function decodeF32Into(t: TensorInfo, raw: Uint8Array, out: Float32Array): Float32Array {
  requireFloat(t);
  const n = (t.end - t.begin) / DTYPE_SIZE[t.dtype];
  if (out.length !== n || raw.byteLength !== t.end - t.begin) {
    throw new EngineError(
      'shape_mismatch',
      `${t.file}: tensor ${t.name} has ${n} values, ${out.length} asked for`,
      {
        file: t.file,
        tensor: t.name,
        expected: n,
        got: out.length,
      },
    );
  }
  switch (t.dtype) {
    case 'F32': {
      new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(raw);
      return out;
    }
    case 'F16': {
      const b = aligned(raw, 2);
      return f16ToF32(new Uint16Array(b.buffer, b.byteOffset, n), out);
    }
    case 'BF16': {
      const b = aligned(raw, 2);
      return bf16ToF32(new Uint16Array(b.buffer, b.byteOffset, n), out);
    }
    default: {
      const b = aligned(raw, 8);
      const src = new Float64Array(b.buffer, b.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = src[i];
      return out;
    }
  }
}

function decodeF16(t: TensorInfo, raw: Uint8Array): Uint16Array {
  requireFloat(t);
  const n = (t.end - t.begin) / DTYPE_SIZE[t.dtype];
  if (t.dtype === 'F16') {
    const b = aligned(raw, 2);
    return new Uint16Array(b.buffer, b.byteOffset, n).slice();
  }
  return f32ToF16(decodeF32(t, raw));
}

// ---------------------------------------------------------------------------------------------
// Writer (tests, fixtures, exports)

export interface WriteEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** the tensor's bytes in file order; F32/F16/BF16 may be given as values instead */
  data: Uint8Array | Float32Array | Uint16Array;
}

/**
 * Serializes tensors in insertion order, packed, header padded with spaces to 8 bytes.
 * A Float32Array is encoded to the entry's float dtype (F16/BF16 rounded to nearest even);
 * a Uint16Array is taken as raw F16/BF16 bits.
 */
export function writeSafetensors(
  entries: Map<string, WriteEntry>,
  metadata?: Record<string, string>,
): Uint8Array {
  const blobs: Uint8Array[] = [];
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, e] of entries) {
    const bytes = encodeEntry(e);
    header[name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    blobs.push(bytes);
  }
  let json = JSON.stringify(header);
  while ((8 + new TextEncoder().encode(json).byteLength) % 8 !== 0) json += ' ';
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.byteLength;
  for (const b of blobs) {
    out.set(b, pos);
    pos += b.byteLength;
  }
  return out;
}

function encodeEntry(e: WriteEntry): Uint8Array {
  if (e.data instanceof Uint8Array) return e.data;
  if (e.data instanceof Uint16Array)
    return new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength);
  const f = e.data;
  switch (e.dtype) {
    case 'F32':
      return new Uint8Array(f.buffer, f.byteOffset, f.byteLength).slice();
    case 'F16':
      return new Uint8Array(f32ToF16(f).buffer);
    case 'BF16':
      return new Uint8Array(f32ToBf16(f).buffer);
    default:
      throw new EngineError('unknown_dtype', `cannot encode float values as ${e.dtype}`, { dtype: e.dtype });
  }
}

/** fp32 → bfloat16 bits, rounding to nearest even (NaN kept quiet). */
export function f32ToBf16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i];
    if ((x & 0x7fffffff) > 0x7f800000) {
      out[i] = (x >>> 16) | 0x40;
      continue;
    }
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}
