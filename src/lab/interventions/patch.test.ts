import { describe, expect, it } from 'vitest';
import type { PatchSet, Tensor } from '../../engine/types';
import {
  alignPositions,
  buildPatchSet,
  patchSites,
  resolveLayers,
  resolvePositions,
  setPatchCell,
  type ModelDims,
  type SourceActivations,
} from './patch';
import type { SegmentRanges } from './perturb';

const dims: ModelDims = { numLayers: 2, hidden: 2, kvHeads: 1, headDim: 2 };
// prefix 3 tokens, query 2, postfix 2
const SEG: SegmentRanges = { prefix: [0, 3], query: [3, 5], postfix: [5, 7] };

// Source values encode where they came from: base + 100·site + 10·position + channel.
function tensor(base: number, site: number, T: number, width: number, shape?: number[]): Tensor {
  const data = new Float32Array(T * width);
  for (let t = 0; t < T; t++)
    for (let c = 0; c < width; c++) data[t * width + c] = base + 100 * site + 10 * t + c;
  return { shape: shape ?? [1, T, width], data };
}
function source(T: number): SourceActivations {
  return {
    resid: new Map([0, 1, 2].map((l) => [l, tensor(0, l, T, 2)])),
    k: new Map([0, 1].map((l) => [l, tensor(1000, l, T, 2)])),
    v: new Map([0, 1].map((l) => [l, tensor(2000, l, T, 2, [1, T, 1, 2])])),
  };
}

describe('resolveLayers', () => {
  it('expands all / lists / inclusive ranges per component', () => {
    expect(resolveLayers('all', 'kv', 2)).toEqual([0, 1]);
    expect(resolveLayers('all', 'resid', 2)).toEqual([0, 1, 2]);
    expect(resolveLayers([1, 0, 1], 'kv', 2)).toEqual([0, 1]);
    expect(resolveLayers({ from: 1, to: 2 }, 'resid', 2)).toEqual([1, 2]);
  });

  it('refuses sites outside the model and bad ranges', () => {
    expect(() => resolveLayers({ from: 1, to: 2 }, 'kv', 2)).toThrow(/kv site 2 is outside 0..1/);
    expect(() => resolveLayers([3], 'resid', 2)).toThrow(RangeError);
    expect(() => resolveLayers([-1], 'kv', 2)).toThrow(RangeError);
    expect(() => resolveLayers([0.5], 'kv', 2)).toThrow(RangeError);
    expect(() => resolveLayers({ from: 2, to: 1 }, 'resid', 2)).toThrow(RangeError);
  });
});

describe('resolvePositions', () => {
  it('segments and explicit positions', () => {
    expect(resolvePositions('prefix', SEG)).toEqual({ positions: [0, 1, 2], requested: 3, matched: true });
    expect(resolvePositions('query', SEG).positions).toEqual([3, 4]);
    expect(resolvePositions('postfix', SEG).positions).toEqual([5, 6]);
    expect(resolvePositions({ explicit: [4, 0, 4] }, SEG)).toEqual({
      positions: [0, 4],
      requested: 2,
      matched: true,
    });
    expect(() => resolvePositions({ explicit: [7] }, SEG)).toThrow(RangeError);
    expect(resolvePositions({ explicit: [7] }, SEG, 8).positions).toEqual([7]);
  });

  it('query-control takes as many query positions as the prefix has', () => {
    const long: SegmentRanges = { prefix: [0, 3], query: [3, 8], postfix: [8, 10] };
    expect(resolvePositions('query-control', long)).toEqual({
      positions: [3, 4, 5],
      requested: 3,
      matched: true,
    });
  });

  it('query-control reports a query shorter than the prefix', () => {
    expect(resolvePositions('query-control', SEG)).toEqual({
      positions: [3, 4],
      requested: 3,
      matched: false,
    });
    const empty: SegmentRanges = { prefix: [0, 3], query: [3, 3], postfix: [3, 5] };
    expect(resolvePositions('query-control', empty)).toEqual({ positions: [], requested: 3, matched: false });
  });
});

describe('alignPositions (base activations from the empty-query prompt)', () => {
  const emptyQuery: SegmentRanges = { prefix: [0, 3], query: [3, 3], postfix: [3, 5] };

  it('keeps prefix positions and shifts postfix positions by the query length', () => {
    expect(alignPositions([0, 1, 2], SEG, emptyQuery)).toEqual([0, 1, 2]);
    expect(alignPositions([5, 6], SEG, emptyQuery)).toEqual([3, 4]);
  });

  it('refuses positions without a counterpart', () => {
    expect(() => alignPositions([3], SEG, emptyQuery)).toThrow(/no counterpart/);
    expect(() => alignPositions([0], SEG, { prefix: [0, 4], query: [4, 4], postfix: [4, 6] })).toThrow(
      /prefix has 3 tokens/,
    );
    expect(() => alignPositions([9], SEG, emptyQuery)).toThrow(RangeError);
  });
});

describe('patchSites', () => {
  it('crosses sites and positions', () => {
    const s = patchSites({ component: 'resid', layers: [2], positions: 'query-control' }, SEG, dims);
    expect(s).toEqual({
      component: 'resid',
      sites: [2],
      positions: { positions: [3, 4], requested: 3, matched: false },
    });
  });
});

describe('buildPatchSet', () => {
  it('places K/V masks and values in the chosen batch rows only', () => {
    const { patches, sites } = buildPatchSet({
      spec: { component: 'kv', layers: [1], positions: 'prefix', source: 'base' },
      segments: SEG,
      dims,
      batch: { batchSize: 3, seqLen: 7 },
      source: source(7),
      rows: [0, 2],
    });
    expect(sites).toEqual([1]);
    expect(patches.resid).toBeUndefined();
    expect([...patches.kv!.keys()]).toEqual([1]);
    const e = patches.kv!.get(1)!;
    expect(Array.from(e.mask)).toEqual([1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0]);
    // row 2, position 1 → flat index 15 → values at 30..31: k = 1000 + 100·1 + 10·1 + c
    expect(Array.from(e.k.subarray(30, 32))).toEqual([1110, 1111]);
    expect(Array.from(e.v.subarray(30, 32))).toEqual([2110, 2111]);
    expect(Array.from(e.k.subarray(0, 6))).toEqual([1100, 1101, 1110, 1111, 1120, 1121]);
    expect(Array.from(e.k.subarray(14, 28)).every((x) => x === 0)).toBe(true); // row 1 untouched
    expect(Array.from(e.k.subarray(6, 14)).every((x) => x === 0)).toBe(true); // row 0, positions 3..6
  });

  it('broadcasts into every row by default and reads aligned source positions', () => {
    const emptyQuery: SegmentRanges = { prefix: [0, 3], query: [3, 3], postfix: [3, 5] };
    const { patches } = buildPatchSet({
      spec: { component: 'resid', layers: { from: 1, to: 2 }, positions: 'postfix' },
      segments: SEG,
      dims,
      batch: { batchSize: 2, seqLen: 7 },
      source: source(5), // the empty-query prompt is 5 tokens long
      sourcePositions: (p) => alignPositions(p, SEG, emptyQuery),
    });
    expect([...patches.resid!.keys()]).toEqual([1, 2]);
    const e = patches.resid!.get(2)!;
    expect(Array.from(e.mask)).toEqual([0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1]);
    // target position 5 ← source position 3: 200 + 30 + c; row 1 position 6 (flat 13) ← source 4
    expect(Array.from(e.value.subarray(10, 12))).toEqual([230, 231]);
    expect(Array.from(e.value.subarray(26, 28))).toEqual([240, 241]);
  });

  it('adds to an existing set with `into`', () => {
    const batch = { batchSize: 1, seqLen: 7 };
    const first = buildPatchSet({
      spec: { component: 'resid', layers: [0], positions: { explicit: [0] } },
      segments: SEG,
      dims,
      batch,
      source: source(7),
    });
    const both = buildPatchSet({
      spec: { component: 'kv', layers: [0], positions: { explicit: [6] } },
      segments: SEG,
      dims,
      batch,
      source: source(7),
      into: first.patches,
    });
    expect(both.patches).toBe(first.patches);
    expect(Array.from(both.patches.resid!.get(0)!.mask)).toEqual([1, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(both.patches.kv!.get(0)!.mask)).toEqual([0, 0, 0, 0, 0, 0, 1]);
  });
});

describe('setPatchCell', () => {
  const batch = { batchSize: 2, seqLen: 7 };
  it('refuses missing sources, bad shapes and out-of-range cells', () => {
    const p: PatchSet = {};
    expect(() =>
      setPatchCell(p, { component: 'resid', site: 0, position: 0, row: 0 }, {}, dims, batch),
    ).toThrow(/lack resid.0/);
    const bad: SourceActivations = {
      resid: new Map([[0, { shape: [1, 7, 3], data: new Float32Array(21) }]]),
    };
    expect(() =>
      setPatchCell(p, { component: 'resid', site: 0, position: 0, row: 0 }, bad, dims, batch),
    ).toThrow(/expected \[B, T, 2\]/);
    const src = source(7);
    expect(() =>
      setPatchCell(p, { component: 'kv', site: 0, position: 0, row: 2 }, src, dims, batch),
    ).toThrow(RangeError);
    expect(() =>
      setPatchCell(p, { component: 'kv', site: 2, position: 0, row: 0 }, src, dims, batch),
    ).toThrow(RangeError);
    expect(() =>
      setPatchCell(p, { component: 'kv', site: 0, position: 7, row: 0 }, src, dims, batch),
    ).toThrow(RangeError);
    expect(() =>
      setPatchCell(p, { component: 'kv', site: 0, position: 0, row: 0, sourcePosition: 7 }, src, dims, batch),
    ).toThrow(/source position 7/);
  });

  it('accepts a [T, width] source', () => {
    const p: PatchSet = {};
    const src: SourceActivations = {
      resid: new Map([[2, { shape: [7, 2], data: tensor(0, 2, 7, 2).data }]]),
    };
    setPatchCell(p, { component: 'resid', site: 2, position: 4, row: 1 }, src, dims, batch);
    expect(Array.from(p.resid!.get(2)!.value.subarray(22, 24))).toEqual([240, 241]);
  });
});

describe('per-head K/V patches', () => {
  const d: ModelDims = { numLayers: 2, hidden: 4, kvHeads: 2, headDim: 2 };
  const T = 7;
  const kvSource = (base: number): SourceActivations => ({
    k: new Map([0, 1].map((l) => [l, tensor(base, l, T, 4)])),
    v: new Map([0, 1].map((l) => [l, tensor(base + 500, l, T, 4)])),
  });
  const src = kvSource(1000);
  const own = kvSource(5000);
  const build = (heads?: number[]) =>
    buildPatchSet({
      spec: { component: 'kv', layers: 'all', positions: 'prefix', ...(heads ? { heads } : {}) },
      segments: SEG,
      dims: d,
      batch: { batchSize: 2, seqLen: T },
      source: src,
      own,
    }).patches;

  it('every head chosen is the all-heads patch, value for value', () => {
    const all = build();
    for (const heads of [
      [0, 1],
      [1, 0],
    ]) {
      const per = build(heads);
      for (const l of [0, 1]) {
        expect(per.kv!.get(l)!.mask).toEqual(all.kv!.get(l)!.mask);
        expect(per.kv!.get(l)!.k).toEqual(all.kv!.get(l)!.k);
        expect(per.kv!.get(l)!.v).toEqual(all.kv!.get(l)!.v);
      }
    }
  });

  it('one head: its channels from the source, the other head from the own run, at patched positions only', () => {
    const p = build([1]).kv!.get(1)!;
    const row = 1;
    for (let t = 0; t < T; t++) {
      const at = (row * T + t) * 4;
      const k = Array.from(p.k.subarray(at, at + 4));
      if (t < 3) {
        expect(p.mask[row * T + t]).toBe(1);
        expect(k).toEqual([
          5000 + 100 + 10 * t,
          5000 + 100 + 10 * t + 1,
          1000 + 100 + 10 * t + 2,
          1000 + 100 + 10 * t + 3,
        ]);
      } else {
        expect(p.mask[row * T + t]).toBe(0);
        expect(k).toEqual([0, 0, 0, 0]);
      }
    }
  });

  it('refuses heads out of range, heads on a residual patch, and heads without the own run', () => {
    expect(() => build([2])).toThrow(/KV head 2/);
    expect(() =>
      buildPatchSet({
        spec: { component: 'resid', layers: [0], positions: 'prefix', heads: [0] },
        segments: SEG,
        dims: d,
        batch: { batchSize: 1, seqLen: T },
        source: src,
      }),
    ).toThrow(/K\/V patches only/);
    expect(() =>
      buildPatchSet({
        spec: { component: 'kv', layers: [0], positions: 'prefix', heads: [0] },
        segments: SEG,
        dims: d,
        batch: { batchSize: 1, seqLen: T },
        source: src,
      }),
    ).toThrow(/own K\/V/);
  });
});
