import { describe, expect, it } from 'vitest';
import type { Tensor } from '../../engine/types';
import type { ModelDims } from './patch';
import { planSweep, runSweep, SweepAbortError, sweepBatchPatches, type SweepCell } from './sweep';

const plan = () =>
  planSweep({
    component: 'resid',
    layers: [0, 1, 2],
    positions: [5, 6],
    maxBatchSize: 4,
    metric: 'logit diff',
  });
const fake = (cells: SweepCell[]) => Promise.resolve(cells.map((c) => c.site * 10 + c.position));

describe('planSweep', () => {
  it('cuts layer-major cells into batches', () => {
    const p = plan();
    expect(p.batches.map((b) => b.length)).toEqual([4, 2]);
    expect(p.batches[0]).toEqual([
      { index: 0, layerIndex: 0, positionIndex: 0, site: 0, position: 5 },
      { index: 1, layerIndex: 0, positionIndex: 1, site: 0, position: 6 },
      { index: 2, layerIndex: 1, positionIndex: 0, site: 1, position: 5 },
      { index: 3, layerIndex: 1, positionIndex: 1, site: 1, position: 6 },
    ]);
    expect(p.batches[1].map((c) => [c.site, c.position])).toEqual([
      [2, 5],
      [2, 6],
    ]);
    expect(p.metric).toBe('logit diff');
    expect(
      planSweep({ component: 'kv', layers: [3], positions: [0, 1, 2], maxBatchSize: 1 }).batches,
    ).toHaveLength(3);
  });

  it("order 'position': position-major, and no batch mixes two positions", () => {
    const p = planSweep({
      component: 'kv',
      layers: [0, 1, 2],
      positions: [5, 6],
      maxBatchSize: 2,
      order: 'position',
    });
    expect(p.order).toBe('position');
    expect(p.batches.map((b) => b.map((c) => [c.site, c.position]))).toEqual([
      [
        [0, 5],
        [1, 5],
      ],
      [[2, 5]],
      [
        [0, 6],
        [1, 6],
      ],
      [[2, 6]],
    ]);
    // same cells, same grid indices as the layer-major plan
    const byIndex = (q: typeof p) => q.batches.flat().sort((a, b) => a.index - b.index);
    expect(byIndex(p)).toEqual(byIndex(planSweep({ ...p, order: 'layer' })));
  });

  it('validates its input', () => {
    const base = { component: 'kv' as const, layers: [0], positions: [0], maxBatchSize: 2 };
    expect(() => planSweep({ ...base, maxBatchSize: 0 })).toThrow(RangeError);
    expect(() => planSweep({ ...base, layers: [] })).toThrow(RangeError);
    expect(() => planSweep({ ...base, positions: [1, 1] })).toThrow(RangeError);
    expect(() => planSweep({ ...base, positions: [-1] })).toThrow(RangeError);
  });
});

describe('runSweep', () => {
  it('fills a [layers × positions] grid and reports progress per batch', async () => {
    const progress: [number, number][] = [];
    const sizes: number[] = [];
    const r = await runSweep(
      plan(),
      (cells) => {
        sizes.push(cells.length);
        return fake(cells);
      },
      { onProgress: (p) => progress.push([p.done, p.total]) },
    );
    expect(Array.from(r.values)).toEqual([5, 6, 15, 16, 25, 26]);
    expect(Array.from(r.done)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(sizes).toEqual([4, 2]);
    expect(progress).toEqual([
      [4, 6],
      [6, 6],
    ]);
    expect(r).toMatchObject({
      component: 'resid',
      metric: 'logit diff',
      layers: [0, 1, 2],
      positions: [5, 6],
    });
  });

  it('stores null metrics as NaN, still done', async () => {
    const r = await runSweep(plan(), (cells) => Promise.resolve(cells.map((c) => (c.site === 1 ? null : 1))));
    expect(Array.from(r.done)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(Number.isNaN(r.values[2])).toBe(true);
    expect(r.values[0]).toBe(1);
  });

  it('refuses a callback that returns the wrong number of values, and passes other errors through', async () => {
    await expect(runSweep(plan(), () => Promise.resolve([1]))).rejects.toThrow(
      /returned 1 values for 4 cells/,
    );
    const boom = new Error('device lost');
    await expect(runSweep(plan(), () => Promise.reject(boom))).rejects.toBe(boom);
  });

  it('cancels promptly, keeps completed cells, and resumes from them', async () => {
    const ctl = new AbortController();
    let calls = 0;
    const hanging = (cells: SweepCell[]) => {
      calls++;
      if (calls === 1) return fake(cells);
      setTimeout(() => ctl.abort(), 5);
      return new Promise<number[]>(() => {}); // never settles: cancellation must not wait for it
    };
    const err = await runSweep(plan(), hanging, { signal: ctl.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SweepAbortError);
    const partial = (err as SweepAbortError).partial;
    expect((err as Error).name).toBe('AbortError');
    expect(Array.from(partial.done)).toEqual([1, 1, 1, 1, 0, 0]);
    expect(Array.from(partial.values.subarray(0, 4))).toEqual([5, 6, 15, 16]);

    const seen: number[][] = [];
    const r = await runSweep(
      plan(),
      (cells) => {
        seen.push(cells.map((c) => c.index));
        return fake(cells);
      },
      { resume: partial },
    );
    expect(seen).toEqual([[4, 5]]);
    expect(Array.from(r.values)).toEqual([5, 6, 15, 16, 25, 26]);
  });

  it('an already aborted signal runs nothing', async () => {
    const ctl = new AbortController();
    ctl.abort();
    let called = false;
    const err = await runSweep(
      plan(),
      (cells) => {
        called = true;
        return fake(cells);
      },
      { signal: ctl.signal },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SweepAbortError);
    expect(Array.from((err as SweepAbortError).partial.done)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(called).toBe(false);
  });

  it('refuses to resume a different sweep', async () => {
    const other = await runSweep(
      planSweep({ component: 'kv', layers: [0, 1, 2], positions: [5, 6], maxBatchSize: 4 }),
      fake,
    );
    await expect(runSweep(plan(), fake, { resume: other })).rejects.toThrow(/different sweep/);
  });
});

describe('sweepBatchPatches', () => {
  it('puts cell i into row rowOffset + i', () => {
    const dims: ModelDims = { numLayers: 2, hidden: 1, kvHeads: 1, headDim: 1 };
    const T = 3;
    const t = (base: number): Tensor => ({
      shape: [1, T, 1],
      data: Float32Array.from([base, base + 1, base + 2]),
    });
    const src = { resid: new Map([0, 1, 2].map((l) => [l, t(10 * l)])) };
    const p = planSweep({ component: 'resid', layers: [0, 2], positions: [1, 2], maxBatchSize: 4 });
    const patches = sweepBatchPatches('resid', p.batches[0], src, dims, T, { rowOffset: 1 });
    // rows: 0 free (baseline), 1: site 0 pos 1, 2: site 0 pos 2, 3: site 2 pos 1, 4: site 2 pos 2
    expect(Array.from(patches.resid!.get(0)!.mask)).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(patches.resid!.get(2)!.mask)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
    expect(Array.from(patches.resid!.get(2)!.value)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 21, 0, 0, 0, 22]);
    expect(patches.resid!.has(1)).toBe(false);
  });

  it('positionOffset: batch position p − offset, from source position p', () => {
    const dims: ModelDims = { numLayers: 2, hidden: 1, kvHeads: 1, headDim: 1 };
    const src = {
      k: new Map([[1, { shape: [1, 4, 1], data: Float32Array.from([10, 11, 12, 13]) }]]),
      v: new Map([[1, { shape: [1, 4, 1], data: Float32Array.from([20, 21, 22, 23]) }]]),
    };
    const cells = planSweep({ component: 'kv', layers: [1], positions: [2], maxBatchSize: 2 }).batches[0];
    // the batch runs prompt positions 2 and 3 only
    const patches = sweepBatchPatches('kv', cells, src, dims, 2, { positionOffset: 2 });
    const e = patches.kv!.get(1)!;
    expect(Array.from(e.mask)).toEqual([1, 0]);
    expect(Array.from(e.k)).toEqual([12, 0]);
    expect(Array.from(e.v)).toEqual([22, 0]);
    expect(() => sweepBatchPatches('kv', cells, src, dims, 2, { positionOffset: 3 })).toThrow(RangeError);
  });
});
