// The append K/V cache of the CPU runtimes: one JS buffer per layer and K/V, [B, kvHeads, capacity,
// headDim], that each forward call writes only its T new slots into (the graph built with `kvAppend`
// outputs just those), so a decode step no longer rewrites and copies out the whole cache. Buffers grow
// in chunks. Caches (model.ts KvCache) are views of the first P slots of one store; slots below a
// view's length are never written again, so a shared prefix stays valid: the first continuation
// appends in place, a second one from the same length copies its slots into a new store (copy on write).
// Pure data handling, no ORT: tested on its own (kvcache.test.ts) and through model.ts.

import type { KvCacheData, Tensor } from './types';

/** slots a store grows by beyond what a call needs (its slack is masked as padding in the graph) */
export const KV_CHUNK = 64;

export interface KvStore {
  /** B · kvHeads */
  readonly rows: number;
  readonly headDim: number;
  /** slots per (row, head) in every buffer */
  readonly capacity: number;
  /** slots [0, used) hold data; a view of length `used` may append in place */
  used: number;
  /** per layer [B, kvHeads, capacity, headDim] */
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
}

/** capacity for `slots` filled slots: the next multiple of KV_CHUNK with at least one chunk of slack */
export function capacityFor(slots: number): number {
  return (Math.floor(slots / KV_CHUNK) + 1) * KV_CHUNK;
}

/** a zeroed store; capacity 0 (an empty cache) holds no memory */
export function newStore(layers: number, rows: number, headDim: number, capacity: number): KvStore {
  const mk = (): Float32Array => new Float32Array(rows * capacity * headDim);
  return {
    rows,
    headDim,
    capacity,
    used: 0,
    keys: Array.from({ length: layers }, mk),
    values: Array.from({ length: layers }, mk),
  };
}

/** copies slots [0, slots) of each (row, head) of `src` (capacity `from`) into `dst` (capacity `to`) */
function copySlots(
  src: Float32Array,
  dst: Float32Array,
  rows: number,
  slots: number,
  from: number,
  to: number,
  hd: number,
): void {
  if (slots === 0) return;
  for (let r = 0; r < rows; r++) dst.set(src.subarray(r * from * hd, (r * from + slots) * hd), r * to * hd);
}

/**
 * Writes T new slots (per layer [B, kvH, T, hd]) after slot P of `store` and returns the store now
 * holding P + T: `store` itself when P is its end and the slots fit, else a new store holding a copy of
 * slots [0, P) (a second continuation of a shared prefix, or growth). Slots below P are never written.
 */
export function appendSlots(
  store: KvStore,
  P: number,
  T: number,
  newKeys: readonly Float32Array[],
  newValues: readonly Float32Array[],
): KvStore {
  const { rows, headDim: hd } = store;
  let st = store;
  if (store.used !== P || P + T > store.capacity) {
    st = newStore(store.keys.length, rows, hd, capacityFor(P + T));
    for (let l = 0; l < store.keys.length; l++) {
      copySlots(store.keys[l], st.keys[l], rows, P, store.capacity, st.capacity, hd);
      copySlots(store.values[l], st.values[l], rows, P, store.capacity, st.capacity, hd);
    }
  }
  for (let l = 0; l < st.keys.length; l++) {
    if (newKeys[l].length !== rows * T * hd || newValues[l].length !== rows * T * hd) {
      throw new Error(`layer ${l}: ${newKeys[l].length} new key values, expected ${rows * T * hd}`);
    }
    for (let r = 0; r < rows; r++) {
      const at = (r * st.capacity + P) * hd;
      st.keys[l].set(newKeys[l].subarray(r * T * hd, (r + 1) * T * hd), at);
      st.values[l].set(newValues[l].subarray(r * T * hd, (r + 1) * T * hd), at);
    }
  }
  st.used = P + T;
  return st;
}

/** a store holding `data` (each layer [B, kvH, length, hd], rows = B·kvH) with room to grow */
export function storeFromData(data: KvCacheData, rows: number, headDim: number): KvStore {
  const st = newStore(data.keys.length, rows, headDim, capacityFor(data.length));
  for (let l = 0; l < data.keys.length; l++) {
    copySlots(data.keys[l], st.keys[l], rows, data.length, data.length, st.capacity, headDim);
    copySlots(data.values[l], st.values[l], rows, data.length, data.length, st.capacity, headDim);
  }
  st.used = data.length;
  return st;
}

/** slots [0, length) of every layer as [B, kvH, length, hd] copies */
export function storeToData(store: KvStore, length: number): KvCacheData {
  const { rows, headDim: hd } = store;
  const compact = (a: Float32Array): Float32Array => {
    const out = new Float32Array(rows * length * hd);
    copySlots(a, out, rows, length, store.capacity, length, hd);
    return out;
  };
  return { length, keys: store.keys.map(compact), values: store.values.map(compact) };
}

/**
 * An append graph's attention tap [B, nH, T, capacity+T] as the contract's [B, nH, T, P+T]: the
 * columns of slots [0, P) and of the T new tokens (the slack columns between are masked, all 0).
 */
export function compactAttention(a: Tensor, P: number, capacity: number, T: number): Tensor {
  const [B, nH] = a.shape;
  const rows = B * nH * T;
  const from = capacity + T;
  const to = P + T;
  const data = new Float32Array(rows * to);
  for (let r = 0; r < rows; r++) {
    data.set(a.data.subarray(r * from, r * from + P), r * to);
    data.set(a.data.subarray(r * from + capacity, (r + 1) * from), r * to + P);
  }
  return { shape: [B, nH, T, to], data };
}
