import { describe, expect, it } from 'vitest';
import { EngineError, type EngineErrorCode } from './errors';
import {
  bf16ToF32,
  blobReader,
  f16ToF32,
  f32ToBf16,
  f32ToF16Bits,
  openSafetensors,
  openShardedSafetensors,
  writeSafetensors,
  type WriteEntry,
} from './safetensors';

/** Builds a file from a raw header object and a data region, for malformed-input tests. */
function rawFile(header: unknown, data: Uint8Array, headerLen?: bigint): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

async function expectCode(p: Promise<unknown>, code: EngineErrorCode): Promise<EngineError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    expect((e as EngineError).code).toBe(code);
    return e as EngineError;
  }
  throw new Error(`expected EngineError ${code}`);
}

const f32 = (...v: number[]): Float32Array => Float32Array.from(v);

describe('round trip', () => {
  const entries = new Map<string, WriteEntry>([
    ['a', { dtype: 'F32', shape: [2, 3], data: f32(1, 2, 3, 4, 5, -6.5) }],
    ['b', { dtype: 'F16', shape: [3], data: f32(0.5, -2, 65504) }],
    ['c', { dtype: 'BF16', shape: [2], data: f32(1.5, -3) }],
    ['empty', { dtype: 'F32', shape: [0, 4], data: f32() }],
    ['ids', { dtype: 'I64', shape: [2], data: new Uint8Array(new BigInt64Array([7n, -1n]).buffer) }],
  ]);
  const bytes = writeSafetensors(entries, { format: 'pt' });

  it('reads every dtype back as fp32 from an ArrayBuffer', async () => {
    const f = await openSafetensors(bytes.slice().buffer);
    expect([...f.tensors.keys()]).toEqual(['a', 'b', 'c', 'empty', 'ids']);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.dataOffset % 8).toBe(0);
    const a = await f.read('a');
    expect(a.shape).toEqual([2, 3]);
    expect([...a.data]).toEqual([1, 2, 3, 4, 5, -6.5]);
    expect([...(await f.read('b')).data]).toEqual([0.5, -2, 65504]);
    expect([...(await f.read('c')).data]).toEqual([1.5, -3]);
    expect((await f.read('empty')).data.length).toBe(0);
  });

  it('reads from a Blob, slicing per tensor', async () => {
    const f = await openSafetensors(new Blob([bytes.slice()]));
    expect([...(await f.read('a')).data]).toEqual([1, 2, 3, 4, 5, -6.5]);
    const r = blobReader(new Blob([bytes.slice()]));
    await expectCode(r.read(bytes.length - 2, 4), 'truncated_file');
  });

  it('reads through a custom reader, touching only the requested ranges', async () => {
    const reads: [number, number][] = [];
    const f = await openSafetensors({
      size: bytes.length,
      read: async (o, n) => {
        reads.push([o, n]);
        return bytes.slice(o, o + n);
      },
    });
    reads.length = 0;
    await f.read('c');
    const info = f.tensors.get('c');
    expect(reads).toEqual([[f.dataOffset + (info?.begin ?? -1), 4]]);
  });

  it('gives fp16 bits: F16 copied, F32/BF16 rounded', async () => {
    const f = await openSafetensors(bytes);
    expect([...(await f.readF16('b')).data]).toEqual([0x3800, 0xc000, 0x7bff]);
    expect([...(await f.readF16('a')).data].slice(0, 2)).toEqual([0x3c00, 0x4000]);
    expect([...(await f.readF16('c')).data]).toEqual([0x3e00, 0xc200]);
  });

  it('refuses integer tensors as floats but gives their bytes', async () => {
    const f = await openSafetensors(bytes);
    await expectCode(f.read('ids'), 'unknown_dtype');
    const raw = await f.readBytes('ids');
    expect([...new BigInt64Array(raw.slice().buffer)]).toEqual([7n, -1n]);
  });

  it('checks an expected shape and names missing tensors', async () => {
    const f = await openSafetensors(bytes);
    const e = await expectCode(f.read('a', { expectShape: [3, 2] }), 'shape_mismatch');
    expect(e.details).toMatchObject({ tensor: 'a', expected: [3, 2], got: [2, 3] });
    const m = await expectCode(f.read('nope'), 'missing_tensor');
    expect(m.details.tensor).toBe('nope');
  });

  it('handles unaligned views', async () => {
    const padded = new Uint8Array(bytes.length + 1);
    padded.set(bytes, 1);
    const f = await openSafetensors(padded.subarray(1));
    expect([...(await f.read('a')).data]).toEqual([1, 2, 3, 4, 5, -6.5]);
    expect([...(await f.read('b')).data]).toEqual([0.5, -2, 65504]);
  });
});

describe('malformed files', () => {
  const four = new Uint8Array(16);

  it('truncated before the header length', async () => {
    await expectCode(openSafetensors(new Uint8Array(5)), 'truncated_file');
  });

  it('header length beyond the file', async () => {
    const f = rawFile({}, new Uint8Array(0), 1000n);
    const e = await expectCode(openSafetensors(f), 'header_too_large');
    expect(e.details.headerLength).toBe('1000');
    await expectCode(openSafetensors(rawFile({}, new Uint8Array(0), 2n ** 63n)), 'header_too_large');
  });

  it('header that is not JSON or not an object', async () => {
    const bad = new Uint8Array(8 + 3);
    new DataView(bad.buffer).setBigUint64(0, 3n, true);
    bad.set(new TextEncoder().encode('{x}'), 8);
    await expectCode(openSafetensors(bad), 'bad_header');
    await expectCode(openSafetensors(rawFile([1, 2], new Uint8Array(0))), 'bad_header');
    await expectCode(openSafetensors(rawFile({ __metadata__: { a: 1 } }, new Uint8Array(0))), 'bad_header');
    await expectCode(
      openSafetensors(rawFile({ t: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, four)),
      'bad_header',
    );
    await expectCode(openSafetensors(rawFile({ t: { dtype: 'F32', shape: [1] } }, four)), 'bad_header');
  });

  it('unknown dtype names the tensor', async () => {
    const e = await expectCode(
      openSafetensors(rawFile({ t: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, four)),
      'unknown_dtype',
    );
    expect(e.details).toMatchObject({ tensor: 't', dtype: 'F128' });
  });

  it('shape × dtype size must equal the byte span', async () => {
    const e = await expectCode(
      openSafetensors(rawFile({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, four)),
      'shape_mismatch',
    );
    expect(e.details).toMatchObject({ tensor: 't', expected: 12, got: 16 });
  });

  it('offsets outside the data region', async () => {
    const e = await expectCode(
      openSafetensors(
        rawFile(
          {
            a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
            t: { dtype: 'F32', shape: [2], data_offsets: [100, 108] },
          },
          four,
        ),
      ),
      'offset_out_of_range',
    );
    expect(e.details.tensor).toBe('t');
    await expectCode(
      openSafetensors(rawFile({ t: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, four)),
      'offset_out_of_range',
    );
  });

  it('a packed layout running past EOF is a truncated file', async () => {
    const good = writeSafetensors(
      new Map<string, WriteEntry>([
        ['a', { dtype: 'F32', shape: [4], data: f32(1, 2, 3, 4) }],
        ['b', { dtype: 'F32', shape: [4], data: f32(1, 2, 3, 4) }],
      ]),
    );
    const e = await expectCode(openSafetensors(good.subarray(0, good.length - 3)), 'truncated_file');
    expect(e.details).toMatchObject({ tensor: 'b' });
  });

  it('overlapping tensors', async () => {
    const e = await expectCode(
      openSafetensors(
        rawFile(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
          },
          four,
        ),
      ),
      'overlapping_tensors',
    );
    expect(e.details).toMatchObject({ tensor: 'b', other: 'a' });
  });
});

describe('the tensors must cover the data region exactly (as the Rust reference requires)', () => {
  const two = new Map<string, WriteEntry>([
    ['a', { dtype: 'F32', shape: [2], data: f32(1, 2) }],
    ['b', { dtype: 'F32', shape: [2], data: f32(3, 4) }],
  ]);
  const good = writeSafetensors(two);
  const headerLen = Number(new DataView(good.buffer).getBigUint64(0, true));

  it('a header length a few bytes short (cutting only padding) is refused, not read shifted', async () => {
    // The writer pads the JSON with spaces to 8 bytes; shortening the declared length by the padding
    // still parses, and would start the data region early, shifting every weight.
    const json = new TextDecoder().decode(good.subarray(8, 8 + headerLen));
    const pad = json.length - json.trimEnd().length;
    expect(pad).toBeGreaterThan(0);
    const shifted = good.slice();
    new DataView(shifted.buffer).setBigUint64(0, BigInt(headerLen - pad), true);
    const e = await expectCode(openSafetensors(shifted, 'shifted.safetensors'), 'uncovered_bytes');
    expect(e.message).toContain('shifted.safetensors');
    expect(e.message).toContain(`${pad} trailing bytes`);
  });

  it('trailing bytes after the last tensor', async () => {
    const longer = new Uint8Array(good.length + 4);
    longer.set(good);
    const e = await expectCode(openSafetensors(longer), 'uncovered_bytes');
    expect(e.details).toMatchObject({ begin: 16, end: 20 });
  });

  it('a gap between tensors, or before the first', async () => {
    const gap = await expectCode(
      openSafetensors(
        rawFile(
          {
            a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
            b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
          },
          new Uint8Array(16),
        ),
      ),
      'uncovered_bytes',
    );
    expect(gap.message).toMatch(/bytes \[4, 8\).*between a and b/);
    const lead = await expectCode(
      openSafetensors(
        rawFile({ b: { dtype: 'F32', shape: [3], data_offsets: [4, 16] } }, new Uint8Array(16)),
      ),
      'uncovered_bytes',
    );
    expect(lead.message).toMatch(/bytes \[0, 4\).*before b/);
  });

  it('an empty tensor must sit where the previous one ends, not inside it', async () => {
    await expectCode(
      openSafetensors(
        rawFile(
          {
            a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
            e: { dtype: 'F32', shape: [0], data_offsets: [8, 8] },
          },
          new Uint8Array(16),
        ),
      ),
      'overlapping_tensors',
    );
    const ok = await openSafetensors(
      rawFile(
        {
          e: { dtype: 'F32', shape: [0], data_offsets: [0, 0] },
          a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
          z: { dtype: 'F16', shape: [0, 3], data_offsets: [16, 16] },
        },
        new Uint8Array(16),
      ),
    );
    expect([...ok.tensors.keys()].sort()).toEqual(['a', 'e', 'z']);
  });

  it('an empty file ({} and no data) is valid; {} with data is not', async () => {
    expect((await openSafetensors(rawFile({}, new Uint8Array(0)))).tensors.size).toBe(0);
    await expectCode(openSafetensors(rawFile({}, new Uint8Array(8))), 'uncovered_bytes');
  });

  it('files written in any tensor order still open, as do the committed fixtures and shards', async () => {
    const reordered = rawFile(
      {
        b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      },
      new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer),
    );
    expect([...(await (await openSafetensors(reordered)).read('b')).data]).toEqual([3, 4]);
    const { readFileSync } = await import('node:fs');
    for (const f of [
      'fixtures/tiny-llama/model.safetensors',
      'fixtures/tiny-qwen3/model.safetensors',
      'fixtures/tiny-llama-lora/adapter_model.safetensors',
      'fixtures/tiny-llama-sharded/model-00001-of-00002.safetensors',
      'fixtures/tiny-llama-sharded/model-00002-of-00002.safetensors',
    ]) {
      expect((await openSafetensors(readFileSync(f), f)).tensors.size, f).toBeGreaterThan(0);
    }
  });
});

describe('sharded', () => {
  const shard1 = writeSafetensors(
    new Map([['x', { dtype: 'F32', shape: [2], data: f32(1, 2) } as WriteEntry]]),
  );
  const shard2 = writeSafetensors(
    new Map<string, WriteEntry>([
      ['y', { dtype: 'BF16', shape: [1], data: f32(3) }],
      ['stray', { dtype: 'F32', shape: [1], data: f32(9) }],
    ]),
  );
  const shards: Record<string, Uint8Array> = { 's1.safetensors': shard1, 's2.safetensors': shard2 };
  const open = async (f: string): Promise<Uint8Array> => shards[f];

  it('joins shards by the weight_map', async () => {
    const s = await openShardedSafetensors(
      { metadata: { total_size: 10 }, weight_map: { x: 's1.safetensors', y: 's2.safetensors' } },
      open,
    );
    expect([...s.tensors.keys()].sort()).toEqual(['x', 'y']);
    expect(s.tensors.get('y')?.file).toBe('s2.safetensors');
    expect([...(await s.read('x')).data]).toEqual([1, 2]);
    expect([...(await s.read('y')).data]).toEqual([3]);
    await expectCode(s.read('stray'), 'missing_tensor');
  });

  it('refuses an index naming a tensor its shard lacks', async () => {
    const e = await expectCode(
      openShardedSafetensors({ weight_map: { z: 's1.safetensors' } }, open),
      'missing_tensor',
    );
    expect(e.details).toMatchObject({ tensor: 'z', file: 's1.safetensors' });
  });

  it('refuses a malformed index', async () => {
    await expectCode(openShardedSafetensors({ weights: {} }, open), 'bad_header');
    await expectCode(openShardedSafetensors({ weight_map: { x: '../etc' } }, open), 'bad_header');
  });
});

describe('float conversions', () => {
  const f16 = (bits: number): number => f16ToF32(Uint16Array.of(bits))[0];

  it('f16 → f32 is exact on normals, subnormals, zeros, inf and nan', () => {
    expect(f16(0x0000)).toBe(0);
    expect(Object.is(f16(0x8000), -0)).toBe(true);
    expect(f16(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(f16(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(f16(0x8001)).toBe(-(2 ** -24));
    expect(f16(0x0400)).toBe(2 ** -14); // smallest normal
    expect(f16(0x3c00)).toBe(1);
    expect(f16(0x3c01)).toBe(1 + 2 ** -10);
    expect(f16(0x7bff)).toBe(65504);
    expect(f16(0xc000)).toBe(-2);
    expect(f16(0x7c00)).toBe(Infinity);
    expect(f16(0xfc00)).toBe(-Infinity);
    expect(f16(0x7e00)).toBeNaN();
    expect(f16(0x7c01)).toBeNaN();
  });

  it('f16 → f32 → f16 round-trips every bit pattern', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f16ToF32(all);
    const wrong: number[] = [];
    for (let i = 0; i < 65536; i++) {
      const isNan = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (isNan ? !Number.isNaN(back[i]) : f32ToF16Bits(back[i]) !== i) wrong.push(i);
    }
    expect(wrong).toEqual([]);
  });

  it('f32 → f16 rounds to nearest even, under/overflows correctly', () => {
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even (down)
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // rounds up to inf
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // half the smallest subnormal: tie → 0
    expect(f32ToF16Bits(1.5 * 2 ** -25)).toBe(1);
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(2); // 1.5 units: tie → even 2
    expect(f32ToF16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // subnormal rounding carries into normal
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(1e-30)).toBe(0);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
    expect(f32ToF16Bits(NaN) & 0x7e00).toBe(0x7e00);
  });

  it('bf16 → f32 is exact, including subnormals, inf and nan', () => {
    const bits = Uint16Array.of(0x3f80, 0xbfc0, 0x0001, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x7f7f);
    const v = bf16ToF32(bits);
    expect(v[0]).toBe(1);
    expect(v[1]).toBe(-1.5);
    expect(v[2]).toBe(2 ** -133); // smallest bf16 subnormal
    expect(Object.is(v[3], -0)).toBe(true);
    expect(v[4]).toBe(Infinity);
    expect(v[5]).toBe(-Infinity);
    expect(v[6]).toBeNaN();
    expect(v[7]).toBe(new Float32Array(new Uint32Array([0x7f7f0000]).buffer)[0]);
    expect([...f32ToBf16(v)].slice(0, 6)).toEqual([...bits].slice(0, 6));
  });

  it('f32 → bf16 rounds to nearest even', () => {
    const x = new Float32Array(new Uint32Array([0x3f808000, 0x3f818000, 0x3f808001, 0x7fc00001]).buffer);
    const b = f32ToBf16(x);
    expect(b[0]).toBe(0x3f80);
    expect(b[1]).toBe(0x3f82);
    expect(b[2]).toBe(0x3f81);
    expect(b[3] & 0x7fc0).toBe(0x7fc0);
  });
});
