// Test-only: where the committed fixture and demo models are, the fixture cases the engine tests run,
// and deterministic prompt ids. Shared so the fp32, q4 and organism tests agree on what they cover.
import { fileURLToPath } from 'node:url';
import { relError } from './graph/compare';
import type { EngineModel } from './model';
import type { ArchSpec } from './types';

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
