// The decode loop: prefill B prompt rows once (with patches, LoRA dose and left padding), then decode
// token by token from the KV cache without patches (the patched prefix lives on in the cache), each row
// with its own stop, streaming tokens as they come and stopping when the AbortSignal fires.
// It must never apply patches after the prefill, never block on anything but the model, and never
// dispose a cache the caller passed in.

import { EngineError } from './errors';
import type { EngineModel, KvCache } from './model';
import { createRng, sampleToken, type Rng, type SamplingOptions } from './sampling';
import type { PatchSet } from './types';

export type FinishReason = 'stop' | 'length' | 'aborted';

export interface GenerateOptions {
  /** B prompt rows of equal length (left-pad ragged prompts and mark the padding in attentionMask) */
  inputIds: number[][];
  /** [B][T] for the prompt tokens: 1 = real, 0 = padding; default all ones */
  attentionMask?: number[][];
  /** patches for the prefill call (positions index the prompt tokens) */
  patches?: PatchSet;
  /** per-row LoRA dose (models with an adapter) */
  loraScale?: number[];
  /** tokens already in the cache (e.g. a shared prefix); one row is broadcast to B. Not disposed. */
  past?: KvCache;
  maxNewTokens: number;
  /** a row stops when it emits one of these (default: the spec's eos ids); the stop token is not returned */
  stopTokens?: readonly number[];
  /** greedy when absent or temperature 0 */
  sampling?: SamplingOptions;
  /** per-row PRNG seeds; default every row uses `sampling.seed` (so row b equals a lone run of row b) */
  seeds?: readonly number[];
  /** called for every new token of every row still running, in row order */
  onToken?: (token: number, row: number, step: number) => void;
  signal?: AbortSignal;
  /** return the final cache instead of disposing it */
  keepCache?: boolean;
}

export interface GeneratedRow {
  tokens: number[];
  finishReason: FinishReason;
  /** the stop token that ended the row, when finishReason is 'stop' */
  stopToken?: number;
}

export interface GenerateResult {
  rows: GeneratedRow[];
  /** the final cache, when keepCache was set */
  cache?: KvCache;
}

export async function generate(model: EngineModel, opts: GenerateOptions): Promise<GenerateResult> {
  const B = opts.inputIds.length;
  if (B === 0) throw new EngineError('bad_input', 'generate needs at least one prompt row');
  const T = opts.inputIds[0].length;
  const stop = new Set(opts.stopTokens ?? model.spec.eosTokenIds);
  const rngs: Rng[] = Array.from({ length: B }, (_, b) =>
    createRng(opts.seeds?.[b] ?? opts.sampling?.seed ?? 0),
  );
  if (opts.seeds && opts.seeds.length !== B) {
    throw new EngineError('bad_input', `seeds has ${opts.seeds.length} entries for ${B} rows`);
  }
  const promptMask = opts.attentionMask ?? opts.inputIds.map((r) => r.map(() => 1));
  if (promptMask.length !== B || promptMask.some((r) => r.length !== T)) {
    throw new EngineError('bad_input', `attentionMask must be [${B}][${T}] for the prompt`);
  }

  const rows: GeneratedRow[] = Array.from({ length: B }, () => ({ tokens: [], finishReason: 'length' }));
  const running = new Array<boolean>(B).fill(true);
  const aborted = (): boolean => opts.signal?.aborted ?? false;

  let cache: KvCache | undefined = opts.past;
  let ownCache = false;
  const release = (): void => {
    if (ownCache && cache) cache.dispose();
  };
  try {
    if (cache && cache.batch !== B) {
      if (cache.batch !== 1) throw new EngineError('bad_input', `past has ${cache.batch} rows, prompt ${B}`);
      cache = await model.expandCache(cache, B);
      ownCache = true;
    }
    const P = cache?.length ?? 0;
    // Full mask so far (past is all real tokens) and each row's next position = real tokens so far.
    const mask = promptMask.map((r) => [...new Array<number>(P).fill(1), ...r]);
    const nextPos = new Array<number>(B).fill(P);
    const positionIds = promptMask.map((r, b) =>
      r.map((m) => {
        const p = nextPos[b];
        if (m) nextPos[b]++;
        return m ? p : 0;
      }),
    );

    if (opts.maxNewTokens <= 0 || aborted()) {
      if (aborted()) for (const r of rows) r.finishReason = 'aborted';
      return { rows };
    }

    let step = 0;
    let result = await model.forward(
      {
        inputIds: opts.inputIds,
        attentionMask: mask,
        positionIds,
        loraScale: opts.loraScale,
        patches: opts.patches,
        taps: { logits: 'last' },
      },
      cache,
    );
    release();
    cache = result.present;
    ownCache = true;

    for (;;) {
      const V = model.spec.vocabSize;
      const next = new Array<number>(B).fill(0);
      for (let b = 0; b < B; b++) {
        if (!running[b]) {
          // finished rows keep the batch shape with their last token; their outputs are ignored
          next[b] = rows[b].stopToken ?? rows[b].tokens[rows[b].tokens.length - 1] ?? 0;
          continue;
        }
        const tok = sampleToken(result.logits.data, opts.sampling, rngs[b], b * V, V);
        next[b] = tok;
        if (stop.has(tok)) {
          running[b] = false;
          rows[b].finishReason = 'stop';
          rows[b].stopToken = tok;
          continue;
        }
        rows[b].tokens.push(tok);
        opts.onToken?.(tok, b, step);
        if (rows[b].tokens.length >= opts.maxNewTokens) {
          running[b] = false;
          rows[b].finishReason = 'length';
        }
      }
      step++;
      if (!running.some(Boolean)) break;
      if (aborted()) {
        for (let b = 0; b < B; b++) if (running[b]) rows[b].finishReason = 'aborted';
        break;
      }
      for (let b = 0; b < B; b++) mask[b].push(1);
      const stepPos = nextPos.map((p) => [p]);
      for (let b = 0; b < B; b++) nextPos[b]++;
      result = await model.forward(
        {
          inputIds: next.map((t) => [t]),
          attentionMask: mask,
          positionIds: stepPos,
          loraScale: opts.loraScale,
          taps: { logits: 'last' },
        },
        cache,
      );
      release();
      cache = result.present;
    }
    if (opts.keepCache) {
      ownCache = false;
      return { rows, cache };
    }
    return { rows };
  } finally {
    release();
  }
}
