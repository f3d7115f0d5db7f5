// The export plan: the same from loaded models (the browser's path) as from the small files (the
// CLI's), the lab's own trial draws reproduced without an embedding (ranks that name the real
// replacement, even in a vocabulary with fewer candidates than n), the weights an adapter shares,
// resolved patch sites and positions, and the evaluation questions with their sample seeds.
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveNodeSource } from '../../cli/node-sources';
import { configureOrt } from '../../engine/session';
import { Lab } from '../run/lab';
import { defaultSpec, parseSpec, type ExperimentSpec } from '../spec/experiment';
import { nearestNeighbours, randomPerturbations, type SegmentedPrompt } from '../interventions/perturb';
import { sampleSeed } from '../eval/eval-table';
import { firstPlotQuestions } from '../eval/em-data';
import { exportPlanFromFiles, exportPlanFromLab } from './resolve';
import { buildExportPlan, perturbationRanks, type ExportPlan } from './plan';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
configureOrt({ numThreads: 1 });
const lab = new Lab({ resolveSource: (s) => resolveNodeSource(s, ROOT), backend: 'node-cpu' });
afterAll(() => lab.dispose());
const fromFiles = (spec: ExperimentSpec) => exportPlanFromFiles(spec, (s) => resolveNodeSource(s, ROOT));

function spec(patch: Partial<ExperimentSpec>): ExperimentSpec {
  const r = parseSpec({ ...defaultSpec(), ...patch });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.spec;
}

const withoutIds = (p: ExportPlan): unknown =>
  JSON.parse(JSON.stringify(p, (k, v: unknown) => (k === 'to' || k === 'text' ? undefined : v)));

describe('the export plan', () => {
  it('is the same from the loaded models as from the files, which only lack the replacement ids', async () => {
    const s = defaultSpec();
    const [a, b] = await Promise.all([exportPlanFromLab(lab, s), fromFiles(s)]);
    expect(withoutIds(a)).toEqual(withoutIds(b));
    const lab0 = a.runs[0].conditions.find((c) => c.trials)!.trials!.items[0].replacements;
    const file0 = b.runs[0].conditions.find((c) => c.trials)!.trials!.items[0].replacements;
    expect(lab0.every((r) => Number.isInteger(r.to))).toBe(true);
    expect(file0.every((r) => r.to === undefined)).toBe(true);
    // the prompt is the lab's own
    const { view } = await lab.prepare(s);
    expect(a.runs[0].prompt).toEqual(view);
  });

  it("gives each replacement's rank among the real neighbours, from the lab's own RNG", async () => {
    const s = defaultSpec();
    const { view, handles } = await lab.prepare(s);
    const emb = await handles.get('finetuned')!.model.embedding();
    const allowedBelow = handles.get('finetuned')!.model.tokenizer.vocabSize;
    const prompt: SegmentedPrompt = { tokens: view.tokens, segments: view.segments };
    for (const pert of [
      { segment: 'prefix' as const, k: 10, n: 5, trials: 6, seed: 0 },
      { segment: 'query' as const, k: 3, n: 8, trials: 4, seed: 99 },
    ]) {
      const real = randomPerturbations(prompt, pert, emb, { allowed: (id) => id < allowedBelow });
      const ranked = perturbationRanks(prompt, pert, emb.vocab, allowedBelow);
      expect(ranked.map((t) => t.seed)).toEqual(real.map((t) => t.seed));
      real.forEach((t, i) => {
        expect(ranked[i].replacements.map((r) => r.position)).toEqual(t.replacements.map((r) => r.position));
        ranked[i].replacements.forEach((r, j) => {
          const nb = nearestNeighbours(
            emb.data,
            emb.vocab,
            emb.hidden,
            r.from,
            pert.n,
            (id) => id < allowedBelow,
          );
          expect(nb.ids[r.rank]).toBe(t.replacements[j].to);
        });
      });
    }
  });

  it('keeps the RNG in step when a token has fewer candidates than n (a tiny vocabulary)', () => {
    const tokens = [0, 1, 2, 1, 0, 2].map((id, i) => ({
      id,
      text: String(id),
      segment: (i < 4 ? 'prefix' : 'query') as 'prefix' | 'query',
    }));
    const prompt: SegmentedPrompt = { tokens, segments: { prefix: [0, 4], query: [4, 6], postfix: [6, 6] } };
    // 4 embedding rows, 3 allowed ids: each token has 2 candidates, fewer than n = 5
    const data = Float32Array.from([1, 0, 0.5, 0.5, 0, 1, 0.9, 0.1]);
    const pert = { segment: 'prefix' as const, k: 3, n: 5, trials: 8, seed: 5 };
    const real = randomPerturbations(
      prompt,
      pert,
      { data, vocab: 4, hidden: 2 },
      { allowed: (id) => id < 3 },
    );
    const ranked = perturbationRanks(prompt, pert, 4, 3);
    real.forEach((t, i) =>
      t.replacements.forEach((r, j) => {
        const nb = nearestNeighbours(data, 4, 2, r.from, 5, (id) => id < 3).ids;
        expect(nb).toHaveLength(2);
        expect(ranked[i].replacements[j]).toMatchObject({ position: r.position, from: r.from });
        expect(nb[ranked[i].replacements[j].rank]).toBe(r.to);
      }),
    );
  });

  it('runs a LoRA finetune and its base on one set of weights, with their doses', async () => {
    const s = spec({
      models: {
        base: { source: { kind: 'demo', name: 'demo-base' }, role: 'base' },
        finetuned: {
          source: { kind: 'demo', name: 'demo-base' },
          adapter: { kind: 'demo', name: 'demo-lora' },
          role: 'finetuned',
        },
        other: { source: { kind: 'demo', name: 'demo-finetuned' } },
      },
      conditions: [
        { id: 'half', label: 'half', model: 'finetuned', loraScale: 0.5 },
        { id: 'other', label: 'other', model: 'other' },
        {
          id: 'qc',
          label: 'qc',
          model: 'finetuned',
          patch: {
            component: 'resid',
            layers: { from: 3, to: 4 },
            positions: 'query-control',
            source: 'base',
          },
        },
      ],
    });
    const p = await fromFiles(s);
    expect(p.weights).toEqual([
      {
        key: 'w0',
        source: { kind: 'folder', path: 'demo/organism-base', demo: 'demo-base' },
        adapters: [
          { name: 'finetuned', source: { kind: 'folder', path: 'demo/organism-lora', demo: 'demo-lora' } },
        ],
      },
      {
        key: 'w1',
        source: { kind: 'folder', path: 'demo/organism-ft', demo: 'demo-finetuned' },
        adapters: [],
      },
    ]);
    expect(p.models.base).toMatchObject({ weights: 'w0', adapter: 'finetuned', dose: 0 });
    expect(p.models.finetuned).toMatchObject({ weights: 'w0', adapter: 'finetuned', dose: 1 });
    expect(p.models.other).toMatchObject({ weights: 'w1', adapter: null, dose: 1 });
    const [half, , qc] = p.runs[0].conditions;
    expect(half.dose).toBe(0.5);
    const q = p.runs[0].prompt.segments.query;
    expect(qc.patch).toMatchObject({ component: 'resid', sites: [3, 4], sourceDose: 0, requested: 26 });
    // the query ("hey I feel bored") is shorter than the 26-token prefix: all of it, and says so
    expect(qc.patch!.positions).toEqual(Array.from({ length: q[1] - q[0] }, (_, i) => q[0] + i));
    expect(qc.patch!.matched).toBe(false);
    expect(qc.patch!.summary).toMatch(/asked for 26, the query has only/);
  });

  it('adds every evaluation question as its own run, with its sample seeds', async () => {
    const s = spec({ evaluation: { questions: 'em-first-plot', samples: 2 } });
    const p = await fromFiles(s);
    const qs = firstPlotQuestions();
    expect(p.runs.map((r) => r.key)).toEqual(['main', ...qs.map((q) => `general:${q.id}`)]);
    const r = p.runs[1];
    expect(r.prompt.text).toContain(qs[0].text);
    expect(r.samples).toEqual(
      [0, 1].map((i) => ({ sample: i, seed: sampleSeed(0, 'general', qs[0].id, i) })),
    );
    expect(r.referenceMargin).toBe(false);
    expect((await fromFiles(s)).judge.prompts.aligned).toContain('{answer}');
    expect(
      (await exportPlanFromFiles(s, (x) => resolveNodeSource(x, ROOT), { evaluation: false })).runs,
    ).toHaveLength(1);
  });

  it('refuses models whose vocabularies differ, as the lab does', async () => {
    const { handles } = await lab.prepare(defaultSpec());
    const h = handles.get('finetuned')!.model;
    const input = (vocabSize: number) => ({
      numLayers: 4,
      hiddenSize: 128,
      numKvHeads: 2,
      headDim: 32,
      vocabSize,
      eosTokenIds: [511],
      tokenizer: h.tokenizer,
      loraScale: 1,
    });
    expect(() => buildExportPlan(defaultSpec(), { base: input(512), finetuned: input(640) })).toThrow(
      'the models have different vocabularies (512 vs 640): patching needs one tokenizer',
    );
    expect(() => buildExportPlan(defaultSpec(), { base: input(512) })).toThrow(
      'no tokenizer/config for model "finetuned"',
    );
  });
});

describe('per-head patches', () => {
  it('are refused by the export with the condition named, not exported as all heads', async () => {
    const s = defaultSpec();
    s.conditions = [
      ...s.conditions,
      {
        id: 'kv-l1-h0',
        label: 'one KV head',
        model: 'finetuned',
        patch: { component: 'kv', layers: [1], positions: 'prefix', source: 'base', heads: [0] },
      },
    ];
    await expect(fromFiles(s)).rejects.toThrow(/"kv-l1-h0": per-head K\/V patches/);
  });
});
