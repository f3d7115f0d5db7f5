// The incremental SHA-256 against node:crypto: the standard vectors, every length around the block
// and padding boundaries, random inputs cut into random chunks (so chunk edges fall everywhere), and
// its throughput (printed, for the report).
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sha256, sha256Hex } from './sha256';

const node = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A small seeded generator, so a failure names a reproducible case. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('Sha256', () => {
  it('gives the FIPS 180-4 test vectors', () => {
    const enc = new TextEncoder();
    expect(sha256Hex(new Uint8Array(0))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(sha256Hex(enc.encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(sha256Hex(enc.encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('matches node:crypto for every length 0…300 (block and padding edges)', () => {
    const data = randomBytes(300);
    for (let n = 0; n <= 300; n++)
      expect(sha256Hex(data.subarray(0, n)), `length ${n}`).toBe(node(data.subarray(0, n)));
  });

  it('matches node:crypto on random inputs fed in random chunks', () => {
    const r = rng(12345);
    for (let trial = 0; trial < 60; trial++) {
      const len = Math.floor(r() * 5000);
      const data = randomBytes(len);
      const h = new Sha256();
      let o = 0;
      while (o < len) {
        // chunks of 0…130 bytes: empty ones, sub-block ones, ones spanning two blocks
        const n = Math.min(len - o, Math.floor(r() * 131));
        h.update(data.subarray(o, o + n));
        o += n;
      }
      expect(h.hex(), `trial ${trial}, length ${len}`).toBe(node(data));
    }
  });

  it('refuses to be used after its digest', () => {
    const h = new Sha256().update(Uint8Array.of(1));
    h.hex();
    expect(() => h.update(Uint8Array.of(2))).toThrow(/after digest/);
    expect(() => h.hex()).toThrow(/twice/);
  });

  it('hashes tens of MB per second (throughput printed)', () => {
    const data = randomBytes(32 << 20);
    const t0 = performance.now();
    const h = new Sha256();
    for (let o = 0; o < data.length; o += 1 << 16) h.update(data.subarray(o, o + (1 << 16)));
    const got = h.hex();
    const s = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const want = node(data);
    const sNode = (performance.now() - t1) / 1000;
    expect(got).toBe(want);
    const mbps = 32 / s;
    console.log(`sha256: ${mbps.toFixed(0)} MB/s in TS, ${(32 / sNode).toFixed(0)} MB/s node:crypto`);
    expect(mbps).toBeGreaterThan(10);
  });
});
