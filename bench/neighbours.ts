// `npm run bench -- --only neighbours`: one random prefix perturbation (k 10, n 5, 10 trials over a
// 24-token prefix) on a random 151,936 × 896 embedding (the Qwen2.5-0.5B shape): today's JS scan per
// token (perturb.ts nearestNeighbours) against the graph-side search (lab/run/neighbours.ts: one ORT
// Gemm pass for all the prefix's tokens, exact rescoring of the few rows near each top 5), per runtime;
// then the same perturbation again from the per-model cache. Checks the trials come out identical.
// Prints numbers, never asserts; progress on stderr.

import { isDeepStrictEqual } from 'node:util';
import { randomPerturbations, type SegmentedPrompt } from '../src/lab/interventions/perturb';
import { NeighbourIndex } from '../src/lab/run/neighbours';
import { loadSample, log, timed, type LoadSample, type Runtime, type Timing } from './lib';

export interface NeighbourFigures {
  runtime: Runtime;
  vocab: number;
  hidden: number;
  /** distinct tokens in the perturbed segment (each needs its neighbours) */
  tokens: number;
  /** one perturbation (all its trials), ms */
  scanMs: Timing;
  /** the graph-side search's session, opened once per lab, ms */
  sessionMs: Timing;
  searchMs: Timing;
  /** the same perturbation again, neighbours from the cache, ms */
  cachedMs: Timing;
  identical: boolean;
  load: { start: LoadSample; end: LoadSample };
}

const VOCAB = 151_936;
const HIDDEN = 896;
const PREFIX = 24;
const T = 33;

function randomEmbedding(): Float32Array {
  // NOTE: a fast integer hash (xorshift) → uniform(−½, ½): 136 M values in about a second
  const data = new Float32Array(VOCAB * HIDDEN);
  let x = 0x9e3779b9;
  for (let i = 0; i < data.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = (x >>> 0) / 4294967296 - 0.5;
  }
  return data;
}

function prompt(): SegmentedPrompt {
  const tokens = Array.from({ length: T }, (_, t) => ({
    id: (t * 7919 + 101) % VOCAB,
    text: `t${t}`,
    segment: t < PREFIX ? ('prefix' as const) : t < T - 5 ? ('query' as const) : ('postfix' as const),
  }));
  return { tokens, segments: { prefix: [0, PREFIX], query: [PREFIX, T - 5], postfix: [T - 5, T] } };
}

export async function measureNeighbours(runtimes: readonly Runtime[]): Promise<NeighbourFigures[]> {
  log(`neighbours: a random ${VOCAB} × ${HIDDEN} embedding`);
  const embedding = { data: randomEmbedding(), vocab: VOCAB, hidden: HIDDEN };
  const p = prompt();
  const spec = { kind: 'random' as const, segment: 'prefix' as const, k: 10, n: 5, trials: 10, seed: 3 };
  const allowed = (id: number) => id < VOCAB - 100; // padded rows past a tokenizer's vocabulary
  const segmentIds = p.tokens.slice(0, PREFIX).map((t) => t.id);
  const out: NeighbourFigures[] = [];
  log('neighbours: the JS scan');
  const start0 = loadSample();
  let want: ReturnType<typeof randomPerturbations> = [];
  const scanMs = await timed(async () => {
    want = randomPerturbations(p, spec, embedding, { allowed });
  });
  for (const rt of runtimes) {
    const start = out.length ? loadSample() : start0;
    const backend = rt === 'wasm' ? 'wasm' : 'node-cpu';
    const index = new NeighbourIndex(backend);
    try {
      // opening the session: a one-token lookup on another embedding, so the cache stays empty here
      const tiny = { data: new Float32Array(2 * HIDDEN).fill(1), vocab: 2, hidden: HIDDEN };
      const sessionMs = await timed(() => index.lookup(tiny, [0], 1, 2, backend));
      log(`neighbours ${rt}: graph-side search`);
      let got: ReturnType<typeof randomPerturbations> = [];
      const run = async () => {
        const table = await index.lookup(embedding, segmentIds, spec.n, VOCAB - 100, backend);
        got = randomPerturbations(p, spec, embedding, { allowed, neighbours: (id) => table.get(id)?.ids });
      };
      const searchMs = await timed(run);
      const identical = isDeepStrictEqual(got, want);
      const cachedMs = await timed(run);
      out.push({
        runtime: rt,
        vocab: VOCAB,
        hidden: HIDDEN,
        tokens: new Set(segmentIds).size,
        scanMs,
        sessionMs,
        searchMs,
        cachedMs,
        identical: identical && isDeepStrictEqual(got, want),
        load: { start, end: loadSample() },
      });
    } finally {
      await index.dispose();
    }
  }
  return out;
}

export function neighboursTable(rows: readonly NeighbourFigures[]): string {
  const f = (x: number) => x.toFixed(0);
  const head =
    'neighbours, one perturbation (k 10, n 5, 10 trials) | runtime | tokens | JS scan ms (CPU) | session ms (once) | search ms (CPU) | cached ms | identical | load';
  return [
    head,
    ...rows.map(
      (r) =>
        `${r.vocab} × ${r.hidden} random embedding | ${r.runtime} | ${r.tokens} | ${f(r.scanMs.wall)} (${f(r.scanMs.cpu)}) | ` +
        `${f(r.sessionMs.wall)} | ${f(r.searchMs.wall)} (${f(r.searchMs.cpu)}) | ${f(r.cachedMs.wall)} | ${r.identical} | ` +
        `${r.load.start.load[0]} → ${r.load.end.load[0]}`,
    ),
  ].join('\n');
}
