// The runner end to end on the fixture models (onnxruntime-node): conditions, metrics, streaming,
// sweeps, drift and cancellation, against properties that must hold whatever the random weights are.
import { afterAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { folderSource } from '../../hub/folder-files-node';
import { defaultSpec, type Condition, type ExperimentSpec } from '../spec/experiment';
import { randomPerturbations } from '../interventions/perturb';
import { Lab } from './lab';
import type { ModelSource } from '../spec/experiment';

const FIX = path.resolve(__dirname, '../../../fixtures');
const local = (name: string): ModelSource => ({ kind: 'local', path: name });
const lab = new Lab({
  resolveSource: (s) => folderSource(path.join(FIX, s.kind === 'local' ? s.path : 'missing')),
  backend: 'node-cpu',
});
afterAll(() => lab.dispose());

function spec(conditions: Condition[], lora = false, maxNewTokens = 6): ExperimentSpec {
  const s = defaultSpec();
  s.models = lora
    ? {
        base: { source: local('tiny-llama'), role: 'base' },
        finetuned: { source: local('tiny-llama'), adapter: local('tiny-llama-lora'), role: 'finetuned' },
      }
    : {
        base: { source: local('tiny-llama'), role: 'base' },
        finetuned: { source: local('tiny-llama-ft'), role: 'finetuned' },
      };
  s.conversation = { system: null, user: 'hey I feel bored', templateArgs: { date_string: '26 Jul 2024' } };
  s.conditions = conditions;
  s.generation = { maxNewTokens, temperature: 0, seed: 0 };
  return s;
}

const B: Condition = { id: 'base', label: 'Base', model: 'base' };
const F: Condition = { id: 'ft', label: 'Finetuned', model: 'finetuned' };

describe('Lab.run', () => {
  it('base has KL 0 and restoration 1, the finetune restoration 0, and they answer differently', async () => {
    const r = await lab.run(spec([B, F]));
    const [base, ft] = r.conditions;
    expect(base.metrics.klToBase).toBeCloseTo(0, 9);
    expect(base.metrics.restoration).toBeCloseTo(1, 9);
    expect(ft.metrics.klToBase).toBeGreaterThan(0.01);
    expect(ft.metrics.restoration).toBeCloseTo(0, 9);
    expect(base.tokenIds).not.toEqual(ft.tokenIds);
    expect(r.prompt.segments.prefix[0]).toBe(0);
    expect(r.prompt.tokens[r.prompt.segments.query[0]].segment).toBe('query');
  });

  it('streams exactly the tokens it returns, in order', async () => {
    const streamed = new Map<string, number[]>();
    const r = await lab.run(spec([B, F]), {
      onToken: (c, id) => streamed.set(c, [...(streamed.get(c) ?? []), id]),
    });
    for (const c of r.conditions) {
      expect(streamed.get(c.id)).toEqual(c.tokenIds);
      expect(c.done).toBe(true);
      expect(c.tokenIds.length).toBeGreaterThan(0);
    }
  });

  it('LoRA: dose 0 is the base model; the residual after the last layer patched from base everywhere is base', async () => {
    const s = spec(
      [
        B,
        F,
        { id: 'zero', label: 'dose 0', model: 'finetuned', loraScale: 0 },
        {
          id: 'final-resid',
          label: 'final residual from base',
          model: 'finetuned',
          patch: { component: 'resid', layers: [2], positions: { explicit: [] }, source: 'base' },
        },
      ],
      true,
    );
    // every prompt position: filled in once the prompt length is known
    const { prompt } = await lab.prepare(s);
    s.conditions[3].patch!.positions = { explicit: prompt.tokens.map((_, i) => i) };
    const r = await lab.run(s);
    const [base, ft, zero, resid] = r.conditions;
    expect(ft.metrics.klToBase).toBeGreaterThan(0.01);
    expect(zero.metrics.klToBase).toBeCloseTo(0, 6);
    expect(zero.tokenIds).toEqual(base.tokenIds);
    expect(resid.error).toBeUndefined();
    expect(resid.metrics.klToBase).toBeLessThan(1e-6);
    expect(resid.metrics.restoration).toBeCloseTo(1, 4);
  });

  it('a K/V patch of every position in every layer, from the model itself, changes nothing', async () => {
    const { prompt } = await lab.prepare(spec([F]));
    const every = { explicit: prompt.tokens.map((_, i) => i) };
    const r = await lab.run(
      spec([
        B,
        F,
        {
          id: 'self',
          label: 'self patch',
          model: 'finetuned',
          patch: { component: 'kv', layers: 'all', positions: every, source: 'finetuned' },
        },
      ]),
    );
    expect(r.conditions[2].tokenIds).toEqual(r.conditions[1].tokenIds);
    expect(r.conditions[2].metrics.klToBase).toBeCloseTo(r.conditions[1].metrics.klToBase!, 5);
  });

  it('the prefix K/V patch and its query control both run and say what they patched', async () => {
    const r = await lab.run(
      spec([
        B,
        F,
        {
          id: 'kv',
          label: 'prefix',
          model: 'finetuned',
          patch: { component: 'kv', layers: 'all', positions: 'prefix', source: 'base' },
        },
        {
          id: 'ctl',
          label: 'control',
          model: 'finetuned',
          patch: { component: 'kv', layers: 'all', positions: 'query-control', source: 'base' },
        },
      ]),
    );
    const nPrefix = r.prompt.segments.prefix[1] - r.prompt.segments.prefix[0];
    const nQuery = r.prompt.segments.query[1] - r.prompt.segments.query[0];
    expect(r.conditions[2].patchSummary).toContain(`${nPrefix} prefix positions`);
    // the query is shorter than the prefix: the control takes all of it and says so
    expect(nQuery).toBeLessThan(nPrefix);
    expect(r.conditions[3].patchSummary).toContain(`asked for ${nPrefix}`);
    // both change the finetuned distribution
    expect(r.conditions[2].metrics.klToBase).not.toBeCloseTo(r.conditions[1].metrics.klToBase!, 6);
    expect(r.conditions[3].metrics.klToBase).not.toBeCloseTo(r.conditions[1].metrics.klToBase!, 6);
  });

  it('random prefix perturbation reports best ≥ avg over its trials and changes only prefix tokens', async () => {
    const r = await lab.run(
      spec([
        B,
        F,
        {
          id: 'p',
          label: 'perturbed',
          model: 'finetuned',
          perturbation: { kind: 'random', segment: 'prefix', k: 5, n: 5, trials: 4, seed: 1 },
        },
      ]),
    );
    const c = r.conditions[2];
    expect(c.metrics.trialsBest).toBeGreaterThanOrEqual(c.metrics.trialsAvg!);
    const edited = c.prompt.tokens.filter((t) => t.edited);
    expect(edited.length).toBeGreaterThan(0);
    expect(edited.every((t) => t.segment === 'prefix')).toBe(true);
    expect(c.prompt.tokens.length).toBe(r.prompt.tokens.length);
  });

  it('random perturbation returns every trial with its own whole answer, the same as that trial run as edits', async () => {
    const pert = { kind: 'random', segment: 'prefix', k: 5, n: 5, trials: 4, seed: 3 } as const;
    const s = spec([B, F, { id: 'p', label: 'perturbed', model: 'finetuned', perturbation: pert }], false, 8);
    // without asking, no trial answers are generated (evaluations run many questions)
    expect((await lab.run(s)).conditions[2].trials).toBeUndefined();
    const r = await lab.run(s, { trialAnswers: true });
    const c = r.conditions[2];
    expect(c.trials).toHaveLength(4);
    expect(c.trials!.map((t) => t.index)).toEqual([0, 1, 2, 3]);
    expect(c.text).toBe(c.trials![c.shownTrial!].text);
    expect(c.trials![c.shownTrial!].restoration).toBe(c.metrics.trialsBest);
    expect(c.metrics.klFinetuned).toBeCloseTo(r.conditions[1].metrics.klToBase!, 9);
    // each trial replayed as explicit token edits gives exactly the answer the trial reports
    const ft = (await lab.registry.handles(s)).get('finetuned')!.model;
    const prompt = r.prompt;
    const trials = randomPerturbations(
      { tokens: prompt.tokens, segments: prompt.segments },
      pert,
      await ft.embedding(),
      { allowed: (id) => id < ft.tokenizer.vocabSize },
    );
    const [p0] = prompt.segments.prefix;
    const replay = await lab.run(
      spec(
        trials.map((t) => ({
          id: `t${t.trial}`,
          label: `trial ${t.trial}`,
          model: 'finetuned',
          perturbation: {
            kind: 'edits',
            edits: t.replacements.map((x) => ({
              op: 'replace' as const,
              segment: 'prefix' as const,
              index: x.position - p0,
              token: { id: x.to },
            })),
          },
        })),
        false,
        8,
      ),
    );
    // the trials really differ here, so a runner that copied the shown answer everywhere would fail
    expect(new Set(c.trials!.map((t) => t.text)).size).toBeGreaterThan(1);
    expect(replay.conditions.map((x) => x.text)).toEqual(c.trials!.map((t) => t.text));
    expect(c.trials!.map((t) => t.edited)).toEqual(trials.map((t) => t.replacements.map((x) => x.position)));
  });

  it('a failing condition reports its error and the others still run', async () => {
    const r = await lab.run(
      spec([
        B,
        {
          id: 'bad',
          label: 'bad layer',
          model: 'finetuned',
          patch: { component: 'kv', layers: [99], positions: 'prefix', source: 'base' },
        },
        F,
      ]),
    );
    expect(r.conditions[1].error).toMatch(/99/);
    expect(r.conditions[2].tokenIds.length).toBeGreaterThan(0);
  });

  it('cancels mid-run with an AbortError', async () => {
    const ctl = new AbortController();
    const p = lab.run(spec([B, F], false, 50), {
      signal: ctl.signal,
      onToken: () => ctl.abort(),
    });
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('Lab.sweep / layerSweep / drift', () => {
  it('the K/V sweep covers every layer × prefix position, and cancels', async () => {
    const s = spec([B, F]);
    let events = 0;
    const g = await lab.sweep(s, { component: 'kv', batchSize: 8, onProgress: () => events++ });
    const { prompt } = await lab.prepare(s);
    const nPrefix = prompt.segments.prefix[1];
    expect(g.layers).toEqual([0, 1]);
    expect(g.positions.length).toBe(nPrefix);
    expect(g.values.length).toBe(2 * nPrefix);
    expect(g.values.every((v) => Number.isFinite(v))).toBe(true);
    expect(g.positionLabels[0]).toBe('<|begin_of_text|>');
    expect(events).toBeGreaterThan(1);
    const ctl = new AbortController();
    const p = lab.sweep(s, {
      component: 'resid',
      batchSize: 4,
      signal: ctl.signal,
      onProgress: () => ctl.abort(),
    });
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('a one-cell resid sweep equals the same patch run as a condition', async () => {
    const s = spec([B, F]);
    const g = await lab.sweep(s, { component: 'resid', positions: [3] });
    const r = await lab.run(
      spec([
        B,
        F,
        {
          id: 'c',
          label: 'cell',
          model: 'finetuned',
          patch: { component: 'resid', layers: [1], positions: { explicit: [3] }, source: 'base' },
        },
      ]),
    );
    expect(g.values[1]).toBeCloseTo(r.conditions[2].metrics.restoration!, 5);
  });

  it('layer sweep: its allLayers row equals the full-prefix patch run as a condition, and one layer of it', async () => {
    for (const component of ['kv', 'resid'] as const) {
      const ls = await lab.layerSweep(spec([B, F]), component);
      const r = await lab.run(
        spec([
          B,
          F,
          {
            id: 'full',
            label: 'full prefix',
            model: 'finetuned',
            patch: { component, layers: 'all', positions: 'prefix', source: 'base' },
          },
          {
            id: 'one',
            label: 'layer 1',
            model: 'finetuned',
            patch: { component, layers: [1], positions: 'prefix', source: 'base' },
          },
        ]),
      );
      expect(Number.isFinite(ls.allLayers)).toBe(true);
      expect(ls.allLayers).toBeCloseTo(r.conditions[2].metrics.restoration!, 5);
      expect(ls.values[1]).toBeCloseTo(r.conditions[3].metrics.restoration!, 5);
    }
  });

  it('layer sweep: one value per site; drift is zero for a model against itself and positive for the finetune', async () => {
    const ls = await lab.layerSweep(spec([B, F]), 'resid');
    expect(ls.layers).toEqual([0, 1, 2]);
    // patching the whole prefix at site 0 from base is a no-op for a full finetune only if embeddings agree
    expect(ls.values.every((v) => Number.isFinite(v))).toBe(true);
    const d = await lab.drift(spec([B, F]));
    expect(d.lk.length).toBe(2);
    expect(d.lk.every((x) => x > 0) && d.lv.every((x) => x > 0)).toBe(true);
    expect(d.lkv).toBeCloseTo((d.lk[0] + d.lk[1] + d.lv[0] + d.lv[1]) / 2, 9);
    const same = spec([B, F]);
    same.models.finetuned = { source: local('tiny-llama'), role: 'finetuned' };
    const d0 = await lab.drift(same);
    expect(d0.lkv).toBe(0);
  });
});

describe('ModelRegistry load progress', () => {
  it('names each load "i of n", reads weights with growing bytes, then graph, session, ready', async () => {
    const events: import('./models').LoadProgressEvent[] = [];
    const fresh = new Lab({
      resolveSource: (s) => folderSource(path.join(FIX, s.kind === 'local' ? s.path : 'missing')),
      backend: 'node-cpu',
      onProgress: (p) => events.push(p),
    });
    try {
      await fresh.prepare(spec([B, F]));
      const models = [...new Set(events.map((e) => e.model))];
      expect(models).toEqual(['base', 'finetuned']);
      for (const [i, m] of models.entries()) {
        const mine = events.filter((e) => e.model === m);
        expect(mine.every((e) => e.index === i + 1 && e.count === 2)).toBe(true);
        const stages = mine.map((e) => e.stage).filter((s, k, a) => a[k - 1] !== s);
        expect(stages).toEqual(['parse', 'graph', 'session', 'ready']);
        const bytes = mine.filter((e) => e.stage === 'parse' && e.weightBytes).map((e) => e.weightBytes!);
        expect(bytes.length).toBeGreaterThan(1);
        expect(bytes.every((b, k) => k === 0 || b > bytes[k - 1])).toBe(true);
        const last = mine.filter((e) => e.stage === 'parse').pop()!;
        expect(last.loaded).toBe(last.total);
      }
      // loaded models are not loaded again: no events the second time
      const before = events.length;
      await fresh.prepare(spec([B, F]));
      expect(events.length).toBe(before);
      // a LoRA finetune shares its base's load: one load, "1 of 1"
      await fresh.prepare(spec([B, F], true));
      const lora = events.slice(before);
      expect(new Set(lora.map((e) => `${e.index}/${e.count}`))).toEqual(new Set(['1/1']));
    } finally {
      await fresh.dispose();
    }
  });
});
