// Nearest neighbours in a model's input embedding for many tokens at once: one graph-side pass of fp32
// dot products (engine/similarity.ts: a Gemm over the embedding in chunks) for all the tokens asked for,
// then perturb.ts's exact rescoring of the few rows that could be in each top n, so the answer is
// `nearestNeighbours`' own, ties included; kept per (embedding, n, allowed bound, token) so a later
// condition, trial or run asks nothing again. Without a search session it scans in JS as before.

import { DotProductSearch } from '../../engine/similarity';
import type { BackendRequest } from '../../engine/session';
import {
  nearestNeighbours,
  nearestNeighboursFromScores,
  type EmbeddingMatrix,
  type Neighbours,
} from '../interventions/perturb';

/** queries per Gemm: the [queries × vocab] scores stay ≤ 32 × 151,936 × 4 B ≈ 19 MB */
const MAX_QUERIES = 32;

export class NeighbourIndex {
  private search: Promise<DotProductSearch | null> | null = null;
  private readonly cache = new WeakMap<EmbeddingMatrix, Map<string, Neighbours>>();

  /**
   * `backend`: where the dot products run ('wasm' or 'node-cpu'; default: as the first lookup asks);
   * null = the JS scan only
   */
  constructor(private readonly backend?: BackendRequest | null) {}

  private session(asked: BackendRequest): Promise<DotProductSearch | null> {
    const backend = this.backend === undefined ? asked : this.backend;
    if (!backend) return Promise.resolve(null);
    // NOTE: a session that cannot open leaves the JS scan, which gives the same answers, only slower
    this.search ??= DotProductSearch.create(backend).catch(() => null);
    return this.search;
  }

  /**
   * The n nearest neighbours of each token (dot product, itself excluded, candidates id < allowedBelow):
   * exactly `nearestNeighbours(e.data, e.vocab, e.hidden, id, n, (v) => v < allowedBelow)` per id.
   */
  async lookup(
    e: EmbeddingMatrix,
    tokenIds: readonly number[],
    n: number,
    allowedBelow: number,
    backend: BackendRequest = 'wasm',
  ): Promise<Map<number, Neighbours>> {
    let byKey = this.cache.get(e);
    if (!byKey) this.cache.set(e, (byKey = new Map()));
    const key = (id: number) => `${n}|${allowedBelow}|${id}`;
    const allowed = (v: number) => v < allowedBelow;
    const todo = [...new Set(tokenIds)].filter((id) => !byKey.has(key(id)));
    for (const id of todo) {
      if (!Number.isInteger(id) || id < 0 || id >= e.vocab) throw new RangeError(`token ${id} ∉ vocab`);
    }
    const search = todo.length ? await this.session(backend) : null;
    for (let i = 0; i < todo.length; i += MAX_QUERIES) {
      const group = todo.slice(i, i + MAX_QUERIES);
      if (!search) {
        for (const id of group)
          byKey.set(key(id), nearestNeighbours(e.data, e.vocab, e.hidden, id, n, allowed));
        continue;
      }
      const queries = new Float32Array(group.length * e.hidden);
      group.forEach((id, j) =>
        queries.set(e.data.subarray(id * e.hidden, (id + 1) * e.hidden), j * e.hidden),
      );
      const { scores, sqNorms } = await search.scores(queries, group.length, e.data, e.vocab, e.hidden);
      group.forEach((id, j) => {
        const approx = scores.subarray(j * e.vocab, (j + 1) * e.vocab);
        byKey.set(
          key(id),
          nearestNeighboursFromScores(e.data, e.vocab, e.hidden, id, n, approx, sqNorms, allowed),
        );
      });
    }
    return new Map(tokenIds.map((id) => [id, byKey.get(key(id))!]));
  }

  async dispose(): Promise<void> {
    const s = await this.search;
    this.search = null;
    await s?.release();
  }
}
