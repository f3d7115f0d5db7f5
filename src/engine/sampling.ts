// Next-token choice from one row of logits: greedy argmax, or temperature / top-k / top-p sampling
// driven by a seeded 32-bit integer PRNG, so the same seed and logits give the same token everywhere.
// It must never use Math.random or touch ORT; it sees plain numbers only.

export interface SamplingOptions {
  /** 0 (or absent) = greedy; otherwise logits are divided by it before the softmax */
  temperature?: number;
  /** keep only the k most likely tokens (0 / absent = all) */
  topK?: number;
  /** keep the smallest set of most likely tokens whose probability reaches p (1 / absent = all) */
  topP?: number;
  /** PRNG seed (default 0) */
  seed?: number;
}

/** A seeded integer PRNG (xoshiro128**, state seeded by splitmix32). */
export interface Rng {
  /** uniform 32-bit unsigned integer */
  nextU32(): number;
  /** uniform in [0, 1) with 24-bit resolution (exact in fp32 and fp64) */
  nextFloat(): number;
}

export function createRng(seed: number): Rng {
  let x = seed >>> 0;
  const splitmix = (): number => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const s = [splitmix(), splitmix(), splitmix(), splitmix()];
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;
  const rotl = (v: number, k: number): number => ((v << k) | (v >>> (32 - k))) >>> 0;
  const nextU32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] = (s[2] ^ t) >>> 0;
    s[3] = rotl(s[3] >>> 0, 11);
    s[0] >>>= 0;
    s[1] >>>= 0;
    s[2] >>>= 0;
    return result;
  };
  return { nextU32, nextFloat: () => (nextU32() >>> 8) / 16777216 };
}

/** Index of the largest value (the lowest index on ties); NaN never wins. */
export function argmax(logits: ArrayLike<number>, offset = 0, length = logits.length - offset): number {
  let best = 0;
  let bestVal = -Infinity;
  for (let i = 0; i < length; i++) {
    const v = logits[offset + i];
    if (v > bestVal) {
      best = i;
      bestVal = v;
    }
  }
  return best;
}

/** Probabilities below e^-CUTOFF of the best token are treated as 0 (far under fp64 resolution of the sum). */
const CUTOFF = 40;

function isGreedy(opts: SamplingOptions | undefined): boolean {
  return !opts || !opts.temperature || opts.temperature <= 0;
}

/** Chooses a token from `logits[offset, offset+length)`; consumes exactly one PRNG draw when sampling. */
export function sampleToken(
  logits: ArrayLike<number>,
  opts: SamplingOptions | undefined,
  rng: Rng,
  offset = 0,
  length = logits.length - offset,
): number {
  if (isGreedy(opts)) return argmax(logits, offset, length);
  const temperature = opts!.temperature!;
  const topK = opts!.topK && opts!.topK > 0 ? Math.floor(opts!.topK) : length;
  const topP = opts!.topP !== undefined && opts!.topP > 0 && opts!.topP < 1 ? opts!.topP : 1;
  const u = rng.nextFloat();

  let max = -Infinity;
  for (let i = 0; i < length; i++) {
    const v = logits[offset + i];
    if (v > max) max = v;
  }
  if (max === -Infinity) return argmax(logits, offset, length);
  const candidates: number[] = [];
  for (let i = 0; i < length; i++) {
    if ((logits[offset + i] - max) / temperature > -CUTOFF) candidates.push(i);
  }
  // descending logit, ascending index on ties: a total order, so the result is deterministic
  candidates.sort((a, b) => logits[offset + b] - logits[offset + a] || a - b);
  const kept = candidates.slice(0, Math.min(topK, candidates.length));
  const probs = kept.map((i) => Math.exp((logits[offset + i] - max) / temperature));
  let total = probs.reduce((a, b) => a + b, 0);
  let n = probs.length;
  if (topP < 1) {
    let cum = 0;
    for (let i = 0; i < probs.length; i++) {
      cum += probs[i];
      if (cum >= topP * total) {
        n = i + 1;
        break;
      }
    }
    total = 0;
    for (let i = 0; i < n; i++) total += probs[i];
  }
  let target = u * total;
  for (let i = 0; i < n; i++) {
    target -= probs[i];
    if (target < 0) return kept[i];
  }
  return kept[n - 1];
}
