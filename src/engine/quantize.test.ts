// The 4-bit block quantizer: MatMulNBits packing (low nibble first, zero points packed per row),
// per-element round-trip bounds, odd K, and the error it causes on the fixture models (weights and
// logits against the fp32 reference forward) — the numbers are printed for the notes.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  dequantizeInt8,
  dequantizeQ4,
  errorStats,
  q4Blocks,
  q4RoundTrip,
  quantizeInt8,
  quantizeQ4,
  quantizeWeights,
} from './quantize';
import { quantizeActivations } from './reference';
import { referenceForward } from './reference';
import { folderSource } from '../hub/folder-files-node';
import { loadModel } from './weights';
import { prng } from './tiny-model';

function randomMatrix(n: number, k: number, seed: number): Float32Array {
  const r = prng(seed);
  return Float32Array.from({ length: n * k }, () => (r() * 2 - 1) * 0.1);
}

describe('quantizeQ4', () => {
  it('packs two codes per byte, low nibble first, in [N, blocks, 16]', () => {
    // one row, K = 32: values −8…7 times 0.5 → symmetric absmax is −4 → scale 0.5, codes v/0.5 + 8
    const w = Float32Array.from({ length: 32 }, (_, i) => ((i % 16) - 8) * 0.5);
    const q = quantizeQ4(w, 1, 32);
    expect(q.codes.length).toBe(16);
    expect(q.scales[0]).toBe(0.5);
    expect(q.zeroPoints).toBeNull();
    expect(q.codes[0]).toBe(0 | (1 << 4));
    expect(q.codes[7]).toBe(14 | (15 << 4));
    expect([...dequantizeQ4(q)]).toEqual([...w]);
  });

  it('alignedZeroPoints keeps zero points only for a multiple of 4 rows (ENGINE_Q4)', () => {
    const opts = { symmetric: false, alignedZeroPoints: true };
    expect(quantizeQ4(randomMatrix(4, 64, 1), 4, 64, opts).zeroPoints).not.toBeNull();
    expect(quantizeQ4(randomMatrix(5, 64, 1), 5, 64, opts).zeroPoints).toBeNull();
    expect(quantizeQ4(randomMatrix(5, 64, 1), 5, 64, { symmetric: false }).zeroPoints).not.toBeNull();
  });

  it('packs zero points per row, two blocks per byte', () => {
    const n = 2;
    const k = 96; // 3 blocks → 2 zero-point bytes per row
    const w = randomMatrix(n, k, 5).map((v, i) => v + (i % 96 < 32 ? 0.05 : 0));
    const q = quantizeQ4(w, n, k, { symmetric: false });
    expect(q.zeroPoints?.length).toBe(n * 2);
    expect(q.codes.length).toBe(n * 3 * 16);
    expect(q.scales.length).toBe(n * 3);
    for (let r = 0; r < n; r++) expect(q.zeroPoints![r * 2 + 1] >> 4).toBe(0);
  });

  for (const symmetric of [true, false]) {
    it(`${symmetric ? 'symmetric' : 'asymmetric'}: every value within one scale step, RMSE well under it`, () => {
      const n = 16;
      const k = 200; // not a multiple of 32: the last block is short
      const w = randomMatrix(n, k, symmetric ? 1 : 2);
      const q = quantizeQ4(w, n, k, { symmetric });
      const back = dequantizeQ4(q);
      const blocks = q4Blocks(k);
      expect(blocks).toBe(7);
      for (let r = 0; r < n; r++) {
        for (let i = 0; i < k; i++) {
          const s = Math.abs(q.scales[r * blocks + Math.floor(i / 32)]);
          expect(Math.abs(back[r * k + i] - w[r * k + i])).toBeLessThanOrEqual(
            s * (symmetric ? 1 : 0.5) + 1e-7,
          );
        }
      }
      const e = errorStats(w, back);
      expect(e.relative).toBeLessThan(0.12);
    });
  }

  it('an all-zero block stays zero; block sizes must be powers of two ≥ 16', () => {
    const w = new Float32Array(64);
    w[40] = 1;
    const back = dequantizeQ4(quantizeQ4(w, 1, 64));
    expect(Array.from(back, (x) => x + 0)).toEqual([...w]);
    expect(() => quantizeQ4(w, 1, 64, { blockSize: 24 })).toThrow(/power of two/);
    expect(() => quantizeQ4(w, 2, 64)).toThrow(/needs 128/);
    const b16 = quantizeQ4(randomMatrix(1, 64, 3), 1, 64, { blockSize: 16 });
    expect(b16.codes.length).toBe(32);
  });
});

function softmax(row: Float32Array): Float64Array {
  let m = -Infinity;
  for (const x of row) m = Math.max(m, x);
  const p = Float64Array.from(row, (x) => Math.exp(x - m));
  const z = p.reduce((a, b) => a + b, 0);
  return p.map((x) => x / z);
}

/** mean KL(p_ref ‖ p_q) over positions, top-1 agreement, relative logits error. */
function compareLogits(ref: Float32Array, got: Float32Array, v: number) {
  const T = ref.length / v;
  let kl = 0;
  let agree = 0;
  for (let t = 0; t < T; t++) {
    const a = ref.subarray(t * v, (t + 1) * v);
    const b = got.subarray(t * v, (t + 1) * v);
    const p = softmax(a);
    const q = softmax(b);
    for (let j = 0; j < v; j++) kl += p[j] * Math.log(p[j] / q[j]);
    let ia = 0;
    let ib = 0;
    for (let j = 1; j < v; j++) {
      if (a[j] > a[ia]) ia = j;
      if (b[j] > b[ib]) ib = j;
    }
    if (ia === ib) agree++;
  }
  return { klMean: kl / T, top1: agree / T, logitsRel: errorStats(ref, got).relative };
}

describe('q4 error on the fixtures', () => {
  const FIX = join(__dirname, '../../fixtures');
  for (const name of ['tiny-llama', 'tiny-qwen2', 'tiny-qwen3']) {
    it(`${name}: weights and logits vs fp32 (symmetric, asymmetric, embedding kept fp32)`, async () => {
      const { spec, weights } = await loadModel(folderSource(join(FIX, name)));
      const r = prng(11);
      const ids = [Array.from({ length: 24 }, () => Math.floor(r() * spec.vocabSize))];
      const ref = referenceForward(spec, weights, { inputIds: ids, taps: { logits: 'all' } }).logits.data;
      const rows: Record<string, unknown>[] = [];
      for (const [variant, opts] of [
        ['q4 sym', { symmetric: true }],
        ['q4 asym', { symmetric: false }],
        ['q4 sym, fp32 embedding', { symmetric: true, includeEmbedding: false }],
      ] as const) {
        const q = quantizeWeights(weights, opts);
        let se = 0;
        let norm = 0;
        for (const [n, m] of q) {
          const orig = weights.get(n)!.data;
          const back = dequantizeQ4(m);
          for (let i = 0; i < orig.length; i++) {
            se += (orig[i] - back[i]) ** 2;
            norm += orig[i] ** 2;
          }
        }
        const got = referenceForward(spec, q4RoundTrip(weights, opts), {
          inputIds: ids,
          taps: { logits: 'all' },
        }).logits.data;
        const c = compareLogits(ref, got, spec.vocabSize);
        rows.push({
          fixture: name,
          variant,
          matrices: q.size,
          weightRel: +Math.sqrt(se / norm).toFixed(4),
          logitsRel: +c.logitsRel.toFixed(4),
          klMean: +c.klMean.toExponential(2),
          top1: +c.top1.toFixed(3),
        });
        // uniform random weights: 16 levels give ~6.5 % relative error (uniform step/√12 over rms)
        expect(Math.sqrt(se / norm)).toBeLessThan(0.08);
        expect(c.klMean).toBeLessThan(0.05);
      }
      for (const row of rows) console.log(`q4 ${JSON.stringify(row)}`);
    });
  }
});

describe('quantizeInt8', () => {
  it('stores Wᵀ codes [k, n] with one symmetric scale per row of W', () => {
    // W [2, 3]: row 0 absmax 1.27 → scale 0.01; row 1 all zero → scale 0, codes 0
    const w = Float32Array.from([1.27, -0.5, 0.004, 0, 0, 0]);
    const q = quantizeInt8(w, 2, 3);
    expect(q.scales[0]).toBe(Math.fround(1.27 / 127));
    expect(q.scales[1]).toBe(0);
    // transposed: codes[c·n + r]
    expect([...q.codes]).toEqual([127, 0, -50, 0, 0, 0]);
    const d = dequantizeInt8(q);
    expect(d[0]).toBeCloseTo(1.27, 6);
    expect(d[1]).toBeCloseTo(-0.5, 6);
    expect([...d.subarray(3)]).toEqual([0, 0, 0]);
  });

  it('round-trips within half a step per element', () => {
    const n = 7;
    const k = 45;
    const w = randomMatrix(n, k, 3);
    const q = quantizeInt8(w, n, k);
    const d = dequantizeInt8(q);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < k; c++) {
        expect(Math.abs(d[r * k + c] - w[r * k + c])).toBeLessThanOrEqual(q.scales[r] / 2 + 1e-7);
        expect(Math.abs(q.codes[c * n + r])).toBeLessThanOrEqual(127);
      }
    }
  });
});

describe('quantizeActivations (the reference mimicking DynamicQuantizeLinear)', () => {
  it('uint8 codes over [min(0, x), max(0, x)], ties to even, zero exact', () => {
    // range [−1, 1.55]: scale 0.01, zero point 100; 0.005 / 0.01 = 0.5 → 0 (even), 0.015 → 2
    const x = Float64Array.from([-1, 1.55, 0, 0.25, 0.005]);
    const q = quantizeActivations(x);
    const scale = Math.fround(2.55 / 255);
    expect(q[0]).toBeCloseTo(-1, 6);
    expect(q[1]).toBeCloseTo(1.55, 6);
    expect(q[2]).toBe(0);
    expect(q[3]).toBeCloseTo(25 * scale, 9);
    expect(q[4]).toBe(0);
    // all zero: zeros
    expect([...quantizeActivations(new Float64Array(3))]).toEqual([0, 0, 0]);
  });
});
