// Rotary position embedding: inverse frequencies (default, linear, Llama-3 scaling as in transformers'
// `_compute_llama3_parameters`), cos/sin tables the ONNX graph gathers by position_ids, and the
// rotate-half rotation (HF Llama convention: first half / second half, never interleaved pairs).
// Must never compute sin/cos on the GPU (WebGPU's are ~1e-3 off): tables are built here in fp64.

import type { ArchSpec, RopeScaling } from './types';

/** inv_freq[i] = 1 / theta^(2i/headDim), i < headDim/2, then the spec's scaling; fp64. */
export function inverseFrequencies(
  spec: Pick<ArchSpec, 'headDim' | 'ropeTheta' | 'ropeScaling'>,
): Float64Array {
  const half = spec.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / spec.ropeTheta ** ((2 * i) / spec.headDim);
  return applyScaling(inv, spec.ropeScaling);
}

function applyScaling(inv: Float64Array, s: RopeScaling): Float64Array {
  switch (s.type) {
    case 'default':
      return inv;
    case 'linear':
      return inv.map((f) => f / s.factor);
    case 'llama3': {
      const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
      const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
      return inv.map((f) => {
        const wavelen = (2 * Math.PI) / f;
        // long wavelengths (low frequencies) are slowed by `factor`
        const scaled = wavelen > lowFreqWavelen ? f / s.factor : f;
        const isMedium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
        if (!isMedium) return scaled;
        const smooth =
          (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) /
          (s.highFreqFactor - s.lowFreqFactor);
        return ((1 - smooth) * scaled) / s.factor + smooth * scaled;
      });
    }
  }
}

export interface RopeTables<T extends Float32Array | Float64Array = Float32Array> {
  /** [maxPos, headDim/2]: cos(p · inv_freq[i]) */
  cos: T;
  /** [maxPos, headDim/2]: sin(p · inv_freq[i]) */
  sin: T;
  maxPos: number;
  half: number;
}

/** fp64 tables, for the reference forward. */
export function ropeTables64(
  spec: Pick<ArchSpec, 'headDim' | 'ropeTheta' | 'ropeScaling'>,
  maxPos: number,
): RopeTables<Float64Array> {
  const inv = inverseFrequencies(spec);
  const half = inv.length;
  const cos = new Float64Array(maxPos * half);
  const sin = new Float64Array(maxPos * half);
  for (let p = 0; p < maxPos; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * inv[i];
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin, maxPos, half };
}

/** fp32 tables for the ONNX graph (computed in fp64, rounded once). */
export function ropeTables(
  spec: Pick<ArchSpec, 'headDim' | 'ropeTheta' | 'ropeScaling'>,
  maxPos: number,
): RopeTables {
  const t = ropeTables64(spec, maxPos);
  return { cos: Float32Array.from(t.cos), sin: Float32Array.from(t.sin), maxPos, half: t.half };
}

/**
 * Rotates one head vector in place: x[off..off+headDim) at table row `pos`.
 * out[i] = x[i]·cos − x[i+h]·sin, out[i+h] = x[i+h]·cos + x[i]·sin (HF `rotate_half`).
 */
export function rotateHalf(
  x: Float64Array,
  off: number,
  pos: number,
  tables: RopeTables<Float32Array | Float64Array>,
): void {
  const h = tables.half;
  const row = pos * h;
  for (let i = 0; i < h; i++) {
    const c = tables.cos[row + i];
    const s = tables.sin[row + i];
    const a = x[off + i];
    const b = x[off + i + h];
    x[off + i] = a * c - b * s;
    x[off + i + h] = b * c + a * s;
  }
}
