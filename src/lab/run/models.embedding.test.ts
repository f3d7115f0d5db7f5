// The lab keeps no fp32 copy of the input embedding unless something asks for it (a random
// perturbation, the tied lens head): a load and a run without either read each weight once, the first
// `embedding()` reads exactly the embedding's bytes again, later calls and perturbed runs none.
import { afterAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import type { FileSource } from '../../engine/files';
import { folderSource } from '../../hub/folder-files-node';
import { defaultSpec, type Condition, type ExperimentSpec } from '../spec/experiment';
import { Lab } from './lab';

const FIX = path.resolve(__dirname, '../../../fixtures');

/** Bytes read from each model's model.safetensors through random access, by folder. */
const readBytes = new Map<string, number>();
function counting(dir: string): FileSource {
  const inner = folderSource(dir);
  return {
    id: inner.id,
    has: (p) => inner.has(p),
    readBytes: (p) => inner.readBytes(p),
    readText: (p) => inner.readText(p),
    readJson: (p) => inner.readJson(p),
    async openRandomAccess(p) {
      const r = await inner.openRandomAccess(p);
      if (p !== 'model.safetensors') return r;
      return {
        size: r.size,
        read: async (offset: number, length: number) => {
          readBytes.set(dir, (readBytes.get(dir) ?? 0) + length);
          return r.read(offset, length);
        },
      };
    },
  };
}

/** Each tensor's stored bytes, from the safetensors header, and the header's as `(header)`. */
async function tensorBytes(dir: string): Promise<Map<string, number>> {
  const r = await folderSource(dir).openRandomAccess('model.safetensors');
  const n = Number(new DataView((await r.read(0, 8)).slice().buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(await r.read(8, n))) as Record<
    string,
    { data_offsets: [number, number] }
  >;
  // NOTE: the header itself (8-byte length + JSON) is read once when the model is opened
  const out = new Map<string, number>([['(header)', 8 + n]]);
  for (const [k, v] of Object.entries(header))
    if (k !== '__metadata__') out.set(k, v.data_offsets[1] - v.data_offsets[0]);
  return out;
}

const lab = new Lab({
  resolveSource: (s) => counting(path.join(FIX, s.kind === 'local' ? s.path : 'missing')),
  backend: 'node-cpu',
});
afterAll(() => lab.dispose());

function spec(conditions: Condition[]): ExperimentSpec {
  const s = defaultSpec();
  s.models = {
    base: { source: { kind: 'local', path: 'tiny-llama' }, role: 'base' },
    finetuned: { source: { kind: 'local', path: 'tiny-llama-ft' }, role: 'finetuned' },
  };
  s.conversation = { system: null, user: 'hey I feel bored', templateArgs: {} };
  s.conditions = conditions;
  s.generation = { maxNewTokens: 3, temperature: 0, seed: 0 };
  return s;
}

describe('the kept embedding is read on first use', () => {
  it('a run without a random perturbation never reads it; the first use reads it once', async () => {
    const plain = spec([
      { id: 'base', label: 'Base', model: 'base' },
      { id: 'ft', label: 'Finetuned', model: 'finetuned' },
      {
        id: 'patched',
        label: 'Prefix K/V from base',
        model: 'finetuned',
        patch: { component: 'kv', layers: 'all', positions: 'prefix', source: 'base' },
      },
    ]);
    await lab.run(plain);
    const ftDir = path.join(FIX, 'tiny-llama-ft');
    const afterRun = readBytes.get(ftDir)!;
    const ft = (await lab.registry.handles(plain)).get('finetuned')!.model;
    const { vocabSize: V, hiddenSize: H } = ft.arch;
    // the build read every tensor once; after the session only the final norm and the K/V projections
    // (the drift proxy's): neither the embedding nor an untied head
    const bytes = await tensorBytes(ftDir);
    let all = 0;
    for (const b of bytes.values()) all += b;
    let after = bytes.get('model.norm.weight')!;
    for (const [name, b] of bytes) if (/self_attn\.[kv]_proj\./.test(name)) after += b;
    expect(afterRun).toBe(all + after);

    const e = await ft.embedding();
    expect([e.vocab, e.hidden, e.data.length]).toEqual([V, H, V * H]);
    const embeddingRead = readBytes.get(ftDir)! - afterRun;
    // one read of the embedding's stored bytes (F32, BF16 or F16), no more
    expect(embeddingRead).toBe(bytes.get('model.embed_tokens.weight'));
    expect(await ft.embedding()).toBe(e);

    // a random perturbation runs on the embedding already read: no read again, and the trials are
    // the ones a fresh lab (reading it during the run) gives
    const perturbed = spec([
      {
        id: 'pert',
        label: 'Prefix perturbed',
        model: 'finetuned',
        perturbation: { kind: 'random', segment: 'prefix', k: 3, n: 5, trials: 3, seed: 1 },
      },
    ]);
    const before = readBytes.get(ftDir)!;
    const r = await lab.run(perturbed);
    expect(readBytes.get(ftDir)).toBe(before);
    const fresh = new Lab({
      resolveSource: (s) => folderSource(path.join(FIX, s.kind === 'local' ? s.path : 'missing')),
      backend: 'node-cpu',
    });
    try {
      const want = await fresh.run(perturbed);
      // the shown trial's prompt (its replacements come from the embedding) and its answer
      const ids = (c: (typeof r.conditions)[number]) => c.prompt.tokens.map((t) => t.id);
      expect(ids(r.conditions[0])).toEqual(ids(want.conditions[0]));
      expect(r.conditions[0].prompt.tokens.some((t) => t.edited)).toBe(true);
      expect(r.conditions[0].text).toBe(want.conditions[0].text);
    } finally {
      await fresh.dispose();
    }
  });
});
