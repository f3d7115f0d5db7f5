// Graph-side neighbour search = the JS scan (nearestNeighbours), ties included: the exact rescoring on
// adversarial approximate scores, the ORT Gemm search on onnxruntime-node and WASM, and the per-model cache.

import { describe, expect, it } from 'vitest';
import { configureOrt } from '../../engine/session';
import { DotProductSearch } from '../../engine/similarity';
import {
  nearestNeighbours,
  nearestNeighboursFromScores,
  randomPerturbations,
  type EmbeddingMatrix,
} from '../interventions/perturb';
import { Rng } from '../interventions/rng';
import { NeighbourIndex } from './neighbours';

configureOrt({ numThreads: 1 });

/**
 * A random embedding with every kind of tie: duplicated rows (exactly equal scores), rows equal but for
 * one last bit, small integers (many equal dot products), and a zero row.
 */
function tiedEmbedding(vocab: number, hidden: number, seed: number): EmbeddingMatrix {
  const rng = new Rng(seed);
  const data = new Float32Array(vocab * hidden);
  for (let v = 0; v < vocab; v++) {
    const row = data.subarray(v * hidden, (v + 1) * hidden);
    const kind = v % 7;
    if (kind === 3 && v > 10) row.set(data.subarray((v - 10) * hidden, (v - 9) * hidden));
    else if (kind === 5 && v > 10) {
      row.set(data.subarray((v - 5) * hidden, (v - 4) * hidden));
      const f = new Float32Array([row[0]]);
      const u = new Uint32Array(f.buffer);
      u[0] ^= 1; // one ulp away
      row[0] = f[0];
    } else if (kind === 6) for (let h = 0; h < hidden; h++) row[h] = rng.int(5) - 2;
    else if (v === 1) row.fill(0);
    else for (let h = 0; h < hidden; h++) row[h] = (rng.nextFloat() - 0.5) * 2;
  }
  return { data, vocab, hidden };
}

function exactScores(e: EmbeddingMatrix, id: number): { scores: Float64Array; sq: Float32Array } {
  const scores = new Float64Array(e.vocab);
  const sq = new Float32Array(e.vocab);
  for (let v = 0; v < e.vocab; v++) {
    let d = 0;
    let s = 0;
    for (let h = 0; h < e.hidden; h++) {
      d += e.data[id * e.hidden + h] * e.data[v * e.hidden + h];
      s += e.data[v * e.hidden + h] ** 2;
    }
    scores[v] = d;
    sq[v] = s;
  }
  return { scores, sq };
}

describe('nearestNeighboursFromScores', () => {
  const e = tiedEmbedding(700, 24, 11);
  const ids = [0, 1, 2, 6, 13, 20, 27, 33, 40, 699];

  it('equals the scan, ties included, whatever rounding error within the bound the scores carry', () => {
    const rng = new Rng(5);
    let tiesSeen = 0;
    for (const id of ids) {
      const { scores, sq } = exactScores(e, id);
      const qn = Math.sqrt(sq[id]);
      for (const n of [1, 5, 17]) {
        for (const allowedBelow of [700, 300]) {
          const allowed = (v: number) => v < allowedBelow;
          const want = nearestNeighbours(e.data, e.vocab, e.hidden, id, n, allowed);
          if (new Set(want.scores).size < want.scores.length) tiesSeen++;
          // scores off by up to 0.9 of the bound, in either direction, row by row
          for (const mode of ['exact', 'noisy', 'down-for-winners'] as const) {
            const approx = new Float32Array(e.vocab);
            for (let v = 0; v < e.vocab; v++) {
              const bound = 2 * (e.hidden + 2) * 2 ** -24 * qn * Math.sqrt(sq[v]) * 0.9;
              const winner = want.ids.includes(v);
              const off =
                mode === 'exact'
                  ? 0
                  : mode === 'noisy'
                    ? (rng.nextFloat() * 2 - 1) * bound
                    : winner
                      ? -bound
                      : bound;
              approx[v] = scores[v] + off;
            }
            const got = nearestNeighboursFromScores(e.data, e.vocab, e.hidden, id, n, approx, sq, allowed);
            expect(got, `id ${id} n ${n} < ${allowedBelow} ${mode}`).toEqual(want);
          }
        }
      }
    }
    // the fixture really has ties among the winners (else 'ties included' proves nothing)
    expect(tiesSeen).toBeGreaterThan(3);
  });

  it('fewer candidates than n: all of them; a non-finite score falls back to the scan', () => {
    const { scores, sq } = exactScores(e, 4);
    const approx = Float32Array.from(scores);
    const allowed = (v: number) => v < 4;
    const got = nearestNeighboursFromScores(e.data, e.vocab, e.hidden, 4, 9, approx, sq, allowed);
    expect(got).toEqual(nearestNeighbours(e.data, e.vocab, e.hidden, 4, 9, allowed));
    expect(got.ids).toHaveLength(4);
    approx[50] = NaN;
    expect(nearestNeighboursFromScores(e.data, e.vocab, e.hidden, 4, 5, approx, sq)).toEqual(
      nearestNeighbours(e.data, e.vocab, e.hidden, 4, 5),
    );
  });

  it('refuses scores of the wrong size', () => {
    expect(() =>
      nearestNeighboursFromScores(
        e.data,
        e.vocab,
        e.hidden,
        0,
        5,
        new Float32Array(3),
        new Float32Array(700),
      ),
    ).toThrow(RangeError);
  });
});

for (const backend of ['node-cpu', 'wasm'] as const) {
  describe(`graph-side search on ${backend}`, () => {
    it('DotProductSearch: every dot product and squared norm, in chunks', async () => {
      const e = tiedEmbedding(301, 16, 3);
      const s = await DotProductSearch.create(backend);
      try {
        const q = e.data.slice(5 * 16, 7 * 16);
        const got = await s.scores(q, 2, e.data, e.vocab, e.hidden, 64); // 5 chunks, the last short
        for (const [j, id] of [5, 6].entries()) {
          const { scores, sq } = exactScores(e, id);
          for (let v = 0; v < e.vocab; v++) {
            expect(Math.abs(got.scores[j * e.vocab + v] - scores[v])).toBeLessThan(1e-4);
            expect(Math.abs(got.sqNorms[v] - sq[v])).toBeLessThan(1e-4 * Math.max(1, sq[v]));
          }
        }
      } finally {
        await s.release();
      }
    });

    it('NeighbourIndex.lookup = nearestNeighbours for every id asked, and asks nothing twice', async () => {
      const e = tiedEmbedding(2000, 40, 9);
      const index = new NeighbourIndex(backend);
      try {
        const ids = [0, 1, 3, 13, 20, 27, 34, 999, 1999, 13];
        const got = await index.lookup(e, ids, 5, 1500);
        for (const id of ids) {
          expect(got.get(id), `id ${id}`).toEqual(
            nearestNeighbours(e.data, e.vocab, e.hidden, id, 5, (v) => v < 1500),
          );
        }
        // a random perturbation from the table = the one that scans
        const prompt = {
          tokens: [0, 13, 27, 34, 999, 1999, 5, 6].map((id, t) => ({
            id,
            text: `t${t}`,
            segment: t < 6 ? ('prefix' as const) : ('query' as const),
          })),
          segments: { prefix: [0, 6], query: [6, 8], postfix: [8, 8] } as Record<
            'prefix' | 'query' | 'postfix',
            [number, number]
          >,
        };
        const pert = { segment: 'prefix' as const, k: 3, n: 5, trials: 6, seed: 1 };
        const table = await index.lookup(e, [0, 13, 27, 34, 999, 1999], 5, 1500);
        const allowed = (v: number) => v < 1500;
        expect(
          randomPerturbations(prompt, pert, e, { allowed, neighbours: (id) => table.get(id)?.ids }),
        ).toEqual(randomPerturbations(prompt, pert, e, { allowed }));
        // cached: a second lookup never runs the session (here: the embedding's rows are changed, and
        // the cached answer comes back unchanged)
        const before = got.get(27)!;
        e.data.fill(0, 0, 40);
        expect((await index.lookup(e, [27], 5, 1500)).get(27)).toEqual(before);
      } finally {
        await index.dispose();
      }
    });
  });
}
