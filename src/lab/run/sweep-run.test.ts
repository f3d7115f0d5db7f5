// The prefix-cache sweep against the full one, cell by cell: every fixture architecture (Llama, its full
// finetune and LoRA, Qwen2 with q/k/v bias, Qwen3, Gemma-2 / Gemma-3 with sliding windows shorter than the
// prompt), K/V and residual, every layer × every position, the logits of each cell compared (not only
// the metric); also how many tokens each way runs, and the same through Lab.sweep.
//
// Tolerance: fp32 rounding only. The two ways add the same terms in a different order (a 1-row prefix
// prefill then a continuation against the cache, vs. one batched pass; MLAS blocks a product by its row
// count), so logits may differ in the last bits: |Δ| ≤ 1e-5 · max |logit| per cell (the engine's own
// batched-vs-single-row tests use 1e-5 absolute). A wrong cache, position or patch row moves logits by
// ≥ 1e-2 on these fixtures (checked below: patched cells differ from the unpatched run by more than that).

import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { relError } from '../../engine/graph/compare';
import { loadLora } from '../../engine/lora';
import { EngineModel } from '../../engine/model';
import { configureOrt } from '../../engine/session';
import { FIXTURE_CASES, fixturePath, spreadIds } from '../../engine/test-fixtures';
import type { ForwardInput } from '../../engine/types';
import { loadModel } from '../../engine/weights';
import { folderSource } from '../../hub/folder-files-node';
import { planSweep } from '../interventions/sweep';
import type { ModelDims, SourceActivations } from '../interventions/patch';
import type { PatchComponent } from '../spec/experiment';
import { defaultSpec, type ExperimentSpec, type ModelSource } from '../spec/experiment';
import { Lab } from './lab';
import { runPatchSweep, tilePrefix, type SweepEngine, type SweepMethod } from './sweep-run';

configureOrt({ numThreads: 1 });

const TOL = 1e-5;
const T = 12;

interface Case {
  name: string;
  target: EngineModel;
  /** the source model: another model, the same at dose 0, or the same on a corrupted prompt */
  source: EngineModel;
  sourceScale: number;
  sourceSalt: number;
  dims: ModelDims;
  vocab: number;
}

const opened: EngineModel[] = [];
afterAll(async () => {
  for (const m of opened) await m.dispose();
});

async function open(folder: string, lora?: string, backend: 'node-cpu' | 'wasm' = 'node-cpu') {
  const src = folderSource(fixturePath(folder));
  const { spec, weights } = await loadModel(src);
  const adapter = lora ? await loadLora(folderSource(fixturePath(lora)), spec) : undefined;
  const m = await EngineModel.create(spec, weights, { backend, lora: adapter });
  opened.push(m);
  return m;
}

const dimsOf = (m: EngineModel): ModelDims => ({
  numLayers: m.spec.numLayers,
  hidden: m.spec.hiddenSize,
  kvHeads: m.spec.numKvHeads,
  headDim: m.spec.headDim,
});

async function acts(
  m: EngineModel,
  ids: number[],
  scale: number,
  component: PatchComponent,
): Promise<SourceActivations> {
  const L = m.spec.numLayers;
  const out = await m.evaluate({
    inputIds: [ids],
    loraScale: [scale],
    taps:
      component === 'kv'
        ? { kv: Array.from({ length: L }, (_, l) => l), logits: 'last' }
        : { resid: Array.from({ length: L + 1 }, (_, l) => l), logits: 'last' },
  });
  return component === 'kv' ? { k: out.k, v: out.v } : { resid: out.resid };
}

/** An engine that counts the token rows (B·T) it is asked to run. */
function counting(m: EngineModel): { engine: SweepEngine; tokens: () => number } {
  let n = 0;
  const add = (i: ForwardInput) => (n += i.inputIds.length * i.inputIds[0].length);
  return {
    engine: {
      evaluate: (i, past) => (add(i), m.evaluate(i, past)),
      forward: (i, past) => (add(i), m.forward(i, past)),
      cacheFromData: (d, b) => m.cacheFromData(d, b),
    },
    tokens: () => n,
  };
}

/** Runs one sweep; returns each cell's last logits (grid order) and the token rows it ran. */
async function sweepLogits(c: Case, component: PatchComponent, method: SweepMethod) {
  const ids = spreadIds(c.target.spec, 1, T, 1)[0];
  const srcIds = c.sourceSalt === 1 ? ids : spreadIds(c.target.spec, 1, T, c.sourceSalt)[0];
  const source = await acts(c.source, srcIds, c.sourceScale, component);
  const L = c.dims.numLayers;
  const layers = Array.from({ length: component === 'kv' ? L : L + 1 }, (_, l) => l);
  const positions = Array.from({ length: T }, (_, p) => p);
  const plan = planSweep({
    component,
    layers,
    positions,
    maxBatchSize: method === 'full' ? 16 : layers.length,
    order: method === 'full' ? 'layer' : 'position',
  });
  const store: Float32Array[] = [];
  const { engine, tokens } = counting(c.target);
  const grid = await runPatchSweep({
    engine,
    ids,
    loraScale: 1,
    component,
    source,
    dims: c.dims,
    plan,
    method,
    metric: (logits) => (store.push(Float32Array.from(logits)), store.length - 1),
  });
  const unpatched = (await c.target.evaluate({ inputIds: [ids], loraScale: [1], taps: { logits: 'last' } }))
    .logits.data;
  return {
    cells: Array.from(grid.values, (i) => store[i]),
    tokens: tokens(),
    unpatched,
    layers,
    positions,
  };
}

async function cases(): Promise<Case[]> {
  const out: Case[] = [];
  for (const fc of FIXTURE_CASES) {
    const target = await open(fc.folder, fc.lora);
    // LoRA: base (dose 0) → finetuned on the same prompt; otherwise a corrupted prompt → the clean one
    out.push({
      name: fc.name,
      target,
      source: target,
      sourceScale: fc.lora ? 0 : 1,
      sourceSalt: fc.lora ? 1 : 7,
      dims: dimsOf(target),
      vocab: target.spec.vocabSize,
    });
  }
  const base = await open('tiny-llama');
  const ft = await open('tiny-llama-ft');
  out.push({
    name: 'tiny-llama → tiny-llama-ft',
    target: ft,
    source: base,
    sourceScale: 1,
    sourceSalt: 1,
    dims: dimsOf(ft),
    vocab: ft.spec.vocabSize,
  });
  return out;
}

describe('tilePrefix', () => {
  it('cuts each head to the first positions and repeats the row', () => {
    // one layer, 2 kv heads, 3 positions, head dim 2: value = 100·head + 10·position + dim
    const a = Float32Array.from({ length: 12 }, (_, i) => {
      const h = Math.floor(i / 6);
      const s = Math.floor((i % 6) / 2);
      return 100 * h + 10 * s + (i % 2);
    });
    const t = tilePrefix({ length: 3, keys: [a], values: [a] }, 2, 2, 2, 2);
    const row = [0, 1, 10, 11, 100, 101, 110, 111];
    expect(t.length).toBe(2);
    expect(Array.from(t.keys[0])).toEqual([...row, ...row]);
    expect(Array.from(t.values[0])).toEqual([...row, ...row]);
    expect(() => tilePrefix({ length: 3, keys: [a], values: [a] }, 4, 1, 2, 2)).toThrow(RangeError);
  });
});

describe('prefix-cache sweep = full sweep, cell by cell', async () => {
  const all = await cases();
  for (const c of all) {
    for (const component of ['kv', 'resid'] as const) {
      it(`${c.name}, ${component}: every layer × position`, async () => {
        const old = await sweepLogits(c, component, 'full');
        const now = await sweepLogits(c, component, 'prefix-cache');
        let worst = 0;
        let moved = 0;
        old.cells.forEach((want, i) => {
          const err = relError(now.cells[i], want);
          worst = Math.max(worst, err);
          expect(err, `cell ${i}`).toBeLessThan(TOL);
          if (relError(want, old.unpatched) > 1e-2) moved++;
        });
        // the patches did something (else equality would prove nothing)
        expect(moved).toBeGreaterThan(old.cells.length / 3);
        // full: every cell runs T tokens; prefix cache: one unpatched run of T, then T − p per cell
        // that is not a no-op (a LoRA pair's residual site 0 is one: the embedding is shared)
        expect(old.tokens).toBe(old.cells.length * T);
        const skipped = component === 'resid' && c.sourceScale === 0 ? 1 : 0;
        const perCell = old.positions.reduce((n, p) => n + (T - p), 0);
        expect(now.tokens).toBe(T + (old.layers.length - skipped) * perCell);
      });
    }
  }

  it('on WASM too (tiny-llama + LoRA, K/V)', async () => {
    const m = await open('tiny-llama', 'tiny-llama-lora', 'wasm');
    const c: Case = {
      name: 'wasm',
      target: m,
      source: m,
      sourceScale: 0,
      sourceSalt: 1,
      dims: dimsOf(m),
      vocab: m.spec.vocabSize,
    };
    const old = await sweepLogits(c, 'kv', 'full');
    const now = await sweepLogits(c, 'kv', 'prefix-cache');
    old.cells.forEach((want, i) => expect(relError(now.cells[i], want), `cell ${i}`).toBeLessThan(TOL));
  });
});

describe('Lab.sweep: prefix cache vs full', () => {
  const FIX = path.resolve(__dirname, '../../../fixtures');
  const local = (name: string): ModelSource => ({ kind: 'local', path: name });
  const lab = new Lab({
    resolveSource: (s) => folderSource(path.join(FIX, s.kind === 'local' ? s.path : 'missing')),
    backend: 'node-cpu',
  });
  afterAll(() => lab.dispose());

  const spec = (lora: boolean): ExperimentSpec => {
    const s = defaultSpec();
    s.models = {
      base: { source: local('tiny-llama'), role: 'base' },
      finetuned: lora
        ? { source: local('tiny-llama'), adapter: local('tiny-llama-lora'), role: 'finetuned' }
        : { source: local('tiny-llama-ft'), role: 'finetuned' },
    };
    s.conversation = {
      system: 'Be brief.',
      user: 'hey I feel bored',
      templateArgs: { date_string: '26 Jul 2024' },
    };
    s.conditions = [];
    return s;
  };

  for (const lora of [false, true]) {
    for (const component of ['kv', 'resid'] as const) {
      it(`${lora ? 'LoRA pair' : 'full finetune'}, ${component}: same restoration grid`, async () => {
        const full = await lab.sweep(spec(lora), { component, method: 'full' });
        let events = 0;
        const fast = await lab.sweep(spec(lora), { component, onProgress: () => events++ });
        expect(fast.layers).toEqual(full.layers);
        expect(fast.positions).toEqual(full.positions);
        expect(fast.positions.length).toBeGreaterThan(10);
        expect(fast.done).toBe(true);
        // one progress event per position (a call holds every layer of one position)
        expect(events).toBe(fast.positions.length);
        fast.values.forEach((v, i) => {
          expect(Number.isFinite(v)).toBe(true);
          expect(Math.abs(v - full.values[i]), `cell ${i}`).toBeLessThan(1e-4);
        });
        // not a constant grid: restoration varies across cells
        expect(Math.max(...fast.values) - Math.min(...fast.values)).toBeGreaterThan(0.05);
      });
    }
  }
});
