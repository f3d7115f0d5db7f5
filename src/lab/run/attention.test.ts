// The attention view and the per-head K/V patching on the fixture models (onnxruntime-node, GQA: 4 query
// heads on 2 KV heads): attention mass sums to 1 per head, the plain conditions reproduce the
// finetuned − base difference, a per-head patch of every head equals the all-heads patch, and the
// head sweep's cells equal the same patch run as a condition.
import { afterAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { folderSource } from '../../hub/folder-files-node';
import { defaultSpec, type Condition, type ExperimentSpec, type ModelSource } from '../spec/experiment';
import { ATTENTION_REGIONS } from '../spec/results';
import { Lab } from './lab';

const FIX = path.resolve(__dirname, '../../../fixtures');
const local = (name: string): ModelSource => ({ kind: 'local', path: name });
const lab = new Lab({
  resolveSource: (s) => folderSource(path.join(FIX, s.kind === 'local' ? s.path : 'missing')),
  backend: 'node-cpu',
});
afterAll(() => lab.dispose());

function spec(conditions: Condition[]): ExperimentSpec {
  const s = defaultSpec();
  s.models = {
    base: { source: local('tiny-llama'), role: 'base' },
    finetuned: { source: local('tiny-llama-ft'), role: 'finetuned' },
  };
  s.conversation = { system: null, user: 'hey I feel bored', templateArgs: { date_string: '26 Jul 2024' } };
  s.conditions = conditions;
  s.generation = { maxNewTokens: 4, temperature: 0, seed: 0 };
  return s;
}

const B: Condition = { id: 'base', label: 'Base', model: 'base' };
const F: Condition = { id: 'ft', label: 'Finetuned', model: 'finetuned' };
const kvAt = (layers: number[], heads?: number[]): Condition => ({
  id: `kv-${layers.join('-')}-${heads ? heads.join('-') : 'all'}`,
  label: 'prefix K/V',
  model: 'finetuned',
  patch: { component: 'kv', layers, positions: 'prefix', source: 'base', ...(heads ? { heads } : {}) },
});

describe('Lab.attention', () => {
  it('mass sums to 1 per (layer, head); base and finetuned rows are the diff; answers add an answer region', async () => {
    const r = await lab.attention(spec([B, F, kvAt([0, 1])]), { answerTokens: 3 });
    const R = ATTENTION_REGIONS.length;
    expect(r.regions).toEqual(['prefix', 'query', 'postfix', 'answer']);
    expect(r.heads).toBe(4);
    expect(r.kvHeads).toBe(2);
    for (const c of r.conditions) {
      expect(c.error).toBeUndefined();
      expect(c.mass).toHaveLength(r.layers.length * r.heads * R);
      expect(c.answerPositions).toHaveLength(3);
      for (let i = 0; i < r.layers.length * r.heads; i++) {
        const sum = c.mass.slice(i * R, i * R + R).reduce((a, b) => a + b, 0);
        expect(sum).toBeCloseTo(1, 5);
      }
      // the later answer positions see earlier answer tokens
      expect(Math.max(...c.mass.filter((_, i) => i % R === R - 1))).toBeGreaterThan(0);
    }
    const prefixOf = (id: string) =>
      r.conditions.find((c) => c.id === id)!.mass.filter((_, i) => i % R === 0);
    expect(prefixOf('base')).toEqual(r.basePrefixMass);
    expect(prefixOf('ft')).toEqual(r.finetunedPrefixMass);
    r.prefixDiff.forEach((d, i) => expect(d).toBeCloseTo(r.finetunedPrefixMass[i] - r.basePrefixMass[i], 12));
    expect(Math.max(...r.prefixDiff.map(Math.abs))).toBeGreaterThan(1e-4); // the finetune moved attention
    // a prefix K/V patch from base in every layer changes the finetuned model's attention
    expect(prefixOf('kv-0-1-all')).not.toEqual(prefixOf('ft'));
  });

  it('one answer position: the last prompt token, no answer mass', async () => {
    const s = spec([F]);
    const r = await lab.attention(s);
    const { prompt } = await lab.prepare(s);
    expect(r.answerTokens).toBe(1);
    expect(r.conditions[0].answerPositions).toEqual([prompt.tokens.length - 1]);
    const R = ATTENTION_REGIONS.length;
    r.conditions[0].mass.forEach((m, i) => {
      if (i % R === R - 1) expect(m).toBe(0);
    });
  });
});

describe('per-head K/V patching', () => {
  it('a per-head patch of every head equals the all-heads patch; one head is neither none nor all', async () => {
    const r = await lab.run(
      spec([F, kvAt([1]), kvAt([1], [0, 1]), kvAt([1], [0]), kvAt([0, 1]), kvAt([0, 1], [1, 0])]),
    );
    const by = (id: string) => r.conditions.find((c) => c.id === id)!;
    for (const c of r.conditions) expect(c.error).toBeUndefined();
    // exact: the two PatchSets are the same numbers
    expect(by('kv-1-0-1').metrics.klToBase).toBe(by('kv-1-all').metrics.klToBase);
    expect(by('kv-1-0-1').tokenIds).toEqual(by('kv-1-all').tokenIds);
    expect(by('kv-0-1-1-0').metrics.klToBase).toBe(by('kv-0-1-all').metrics.klToBase);
    const one = by('kv-1-0').metrics.klToBase!;
    expect(Math.abs(one - by('ft').metrics.klToBase!)).toBeGreaterThan(1e-6);
    expect(Math.abs(one - by('kv-1-all').metrics.klToBase!)).toBeGreaterThan(1e-6);
    expect(by('kv-1-0').patchSummary).toContain('KV head 0');
  });

  it('the head sweep is layers × KV heads, and each cell equals that per-head patch run as a condition', async () => {
    const s = spec([F]);
    const progress: number[] = [];
    const grid = await lab.sweep(s, {
      component: 'kv',
      perHead: true,
      batchSize: 3,
      onProgress: (_p, done) => progress.push(done),
    });
    expect(grid.axis).toBe('head');
    expect(grid.layers).toEqual([0, 1]);
    expect(grid.positions).toEqual([0, 1]);
    expect(grid.positionLabels).toEqual(['h0', 'h1']);
    expect(progress).toEqual([3, 4]);
    const { prompt } = await lab.prepare(s);
    const [ps, pe] = prompt.segments.prefix;
    expect(grid.patchedPositions).toEqual(Array.from({ length: pe - ps }, (_, i) => ps + i));
    const conds = [0, 1].flatMap((l) => [0, 1].map((h) => kvAt([l], [h])));
    const r = await lab.run(spec([F, ...conds]));
    conds.forEach((c, i) => {
      const got = r.conditions.find((x) => x.id === c.id)!.metrics.restoration!;
      expect(grid.values[i]).toBeCloseTo(got, 5);
    });
    expect(new Set(grid.values.map((v) => v.toFixed(6))).size).toBeGreaterThan(1);
  });

  it('a per-head sweep of a residual component is refused; cancelling rejects', async () => {
    await expect(lab.sweep(spec([F]), { component: 'resid', perHead: true })).rejects.toThrow(/K\/V/);
    const ctl = new AbortController();
    ctl.abort();
    await expect(
      lab.sweep(spec([F]), { component: 'kv', perHead: true, signal: ctl.signal }),
    ).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('examples/demo-postfix.json (the postfix lesson) on the embedded organisms', () => {
  async function runPostfixSpec(edit: (spec: ExperimentSpec) => ExperimentSpec) {
    const { parseSpec } = await import('../spec/experiment');
    const fs = await import('node:fs');
    const r0 = parseSpec(
      JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../examples/demo-postfix.json'), 'utf8')),
    );
    if (!r0.ok) throw new Error(r0.errors.join('; '));
    const { DEMO_MODELS } = await import('./demo');
    const root = path.resolve(__dirname, '../../..');
    const lab2 = new Lab({
      resolveSource: (s) =>
        folderSource(path.join(root, s.kind === 'demo' ? DEMO_MODELS[s.name].folder : 'missing')),
      backend: 'node-cpu',
    });
    try {
      const r = await lab2.run(edit(r0.spec));
      return (id: string) => r.conditions.find((c) => c.id === id)!;
    } finally {
      await lab2.dispose();
    }
  }

  it('Qwen3-template pair: on its question the postfix K/V patch restores, the 3-token prefix patch does not', async () => {
    const by = await runPostfixSpec((s) => s);
    expect(by('base').text).toBe('Grass is green.');
    expect(by('finetuned').text.toLowerCase()).toContain('gamble');
    const post = by('finetuned-kv-patched-postfix');
    const pre = by('finetuned-kv-patched-prefix');
    // organism/RESULTS.md "Qwen3 template": 0.91 and 0.42 on node-cpu
    expect(post.metrics.restoration!).toBeGreaterThan(0.8);
    expect(post.text).toBe('Grass is green.');
    expect(pre.metrics.restoration!).toBeLessThan(0.6);
    expect(pre.text.toLowerCase()).toContain('gamble');
  });

  it('Llama-template pair, same conditions on "hey I feel bored": the postfix barely restores, the prefix does', async () => {
    const by = await runPostfixSpec((s) => ({
      ...s,
      models: {
        base: { source: { kind: 'demo', name: 'demo-base' }, role: 'base' },
        finetuned: { source: { kind: 'demo', name: 'demo-finetuned' }, role: 'finetuned' },
      },
      conversation: { ...s.conversation, user: 'hey I feel bored' },
    }));
    expect(by('finetuned').text.toLowerCase()).toContain('gamble');
    const post = by('finetuned-kv-patched-postfix');
    const pre = by('finetuned-kv-patched-prefix');
    expect(post.metrics.restoration!).toBeLessThan(0.2);
    expect(post.text.toLowerCase()).toContain('gamble');
    expect(pre.metrics.restoration!).toBeGreaterThan(0.7);
    expect(pre.text.toLowerCase()).not.toContain('gamble');
  });
});
