// Test-only: where the committed fixture and demo models are, the fixture cases the engine tests run,
// deterministic prompt ids and the checks the dtype tests share. Shared so the fp32, fp16, int8, q4 and
// organism tests agree on what they cover.
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { relError } from './graph/compare';
import type { EngineModel } from './model';
import type { ArchSpec, ForwardInput, ForwardResult } from './types';

export const fixturePath = (name: string): string =>
  fileURLToPath(new URL(`../../fixtures/${name}`, import.meta.url));
export const demoPath = (name: string): string =>
  fileURLToPath(new URL(`../../demo/${name}`, import.meta.url));

export interface FixtureCase {
  name: string;
  folder: string;
  lora?: string;
}

/** Every fixture architecture, and the LoRA adapter on its base. */
export const FIXTURE_CASES: readonly FixtureCase[] = [
  { name: 'tiny-llama', folder: 'tiny-llama' },
  { name: 'tiny-llama-ft', folder: 'tiny-llama-ft' },
  { name: 'tiny-llama + LoRA', folder: 'tiny-llama', lora: 'tiny-llama-lora' },
  { name: 'tiny-qwen2', folder: 'tiny-qwen2' },
  { name: 'tiny-qwen3', folder: 'tiny-qwen3' },
  { name: 'tiny-gemma2', folder: 'tiny-gemma2' },
  { name: 'tiny-gemma3', folder: 'tiny-gemma3' },
  { name: 'tiny-gemma3 + LoRA', folder: 'tiny-gemma3', lora: 'tiny-gemma3-lora' },
];

/** deterministic ids spread over the vocabulary */
export function spreadIds(spec: ArchSpec, B: number, T: number, salt: number): number[][] {
  return Array.from({ length: B }, (_, b) =>
    Array.from({ length: T }, (_, t) => (b * 131 + t * 37 + salt * 17 + 3) % spec.vocabSize),
  );
}

/**
 * Prefill the first `P` tokens of each row, then decode the rest one step at a time through the KV cache;
 * the worst relative error of each step's logits against `fullLogits` (a full run over all rows,
 * [B, T, V] row-major).
 */
export async function stepDecodeWorstError(
  model: EngineModel,
  all: number[][],
  P: number,
  fullLogits: Float32Array,
  V: number,
): Promise<number> {
  const B = all.length;
  const T = all[0].length;
  let r = await model.forward({ inputIds: all.map((row) => row.slice(0, P)) });
  let worst = 0;
  for (let t = P; t < T; t++) {
    const next = await model.forward({ inputIds: all.map((row) => [row[t]]) }, r.present);
    r.present.dispose();
    r = next;
    const want = new Float32Array(B * V);
    for (let b = 0; b < B; b++) want.set(fullLogits.subarray((b * T + t) * V, (b * T + t + 1) * V), b * V);
    worst = Math.max(worst, relError(r.logits.data, want));
  }
  r.present.dispose();
  return worst;
}

/** tap maps as EngineModel.forward and referenceForward return them */
type Taps = Record<'resid' | 'k' | 'v' | 'attn', Map<number, { data: Float32Array }>>;

/** The prefill the dtype tests compare: two rows of 12, resid / K/V / attention taps, two LoRA doses. */
export function prefillCheckInput(spec: ArchSpec, lora: boolean): ForwardInput {
  const L = spec.numLayers;
  return {
    inputIds: spreadIds(spec, 2, 12, 1),
    taps: { resid: [0, L], kv: [L - 1], attn: [0] },
    loraScale: lora ? [1, 0.5] : undefined,
  };
}

/** every tap the reference returned, within `tol` relative error of the engine's */
export function expectTapsClose(got: Taps, want: Taps, tol: number): void {
  for (const kind of ['resid', 'k', 'v', 'attn'] as const) {
    for (const [site, t] of want[kind])
      expect(relError(got[kind].get(site)!.data, t.data), `${kind}.${site}`).toBeLessThan(tol);
  }
}

/** the share of rows ([rows, V] logits) whose argmax agrees, and the row count */
export function top1Agreement(a: Float32Array, b: Float32Array, V: number): { agree: number; rows: number } {
  const argmax = (x: Float32Array, r: number): number => {
    let best = 0;
    for (let v = 1; v < V; v++) if (x[r * V + v] > x[r * V + best]) best = v;
    return best;
  };
  const rows = a.length / V;
  let same = 0;
  for (let r = 0; r < rows; r++) if (argmax(a, r) === argmax(b, r)) same++;
  return { agree: same / rows, rows };
}

/**
 * A full residual patch at site 1 of a 6-token row (every position replaced): the engine's logits and
 * final residual against `ref` on the same input, as relative errors.
 */
export async function residPatchErrors(
  model: EngineModel,
  spec: ArchSpec,
  ref: (input: ForwardInput) => ForwardResult,
): Promise<{ logits: number; resid: number }> {
  const inputIds = spreadIds(spec, 1, 6, 3);
  const L = spec.numLayers;
  const value = Float32Array.from({ length: 6 * spec.hiddenSize }, (_, i) => Math.sin(i) * 0.5);
  const input: ForwardInput = {
    inputIds,
    patches: { resid: new Map([[1, { mask: new Float32Array(6).fill(1), value }]]) },
    taps: { resid: [L] },
  };
  const got = await model.forward(input);
  got.present.dispose();
  const want = ref(input);
  return {
    logits: relError(got.logits.data, want.logits.data),
    resid: relError(got.resid.get(L)!.data, want.resid.get(L)!.data),
  };
}
