// `piggyback inspect`: what a model source is — architecture, sizes, adapter, template segments of a
// sample prompt. Reads files only; builds no session.
import type { FileSource } from '../engine/source';
import { parseConfigDetailed } from '../engine/config';
import { openModelTensors } from '../engine/weights';
import { parseLoraConfig } from '../engine/lora';
import { loadTokenizer } from '../lab/tokenizer';
import { buildPrompt } from '../lab/template';

export interface ModelInfo {
  source: string;
  kind: 'model' | 'adapter';
  architecture?: Record<string, unknown>;
  parameters?: number;
  tensors?: number;
  dtypes?: string[];
  adapter?: Record<string, unknown>;
  notes: string[];
  sample?: { user: string; prefix: string[]; query: string[]; postfix: string[] };
}

export async function inspectModel(source: FileSource): Promise<ModelInfo> {
  const notes: string[] = [];
  if (!(await source.has('config.json')) && (await source.has('adapter_config.json'))) {
    const cfg = parseLoraConfig(await source.readJson('adapter_config.json'));
    return { source: source.id, kind: 'adapter', adapter: { ...cfg }, notes };
  }
  const { spec, notes: cfgNotes } = parseConfigDetailed(await source.readJson('config.json'));
  notes.push(...cfgNotes);
  const store = await openModelTensors(source);
  let parameters = 0;
  const dtypes = new Set<string>();
  for (const t of store.tensors.values()) {
    parameters += t.shape.reduce((a, b) => a * b, 1);
    dtypes.add(t.dtype);
  }
  const info: ModelInfo = {
    source: source.id,
    kind: 'model',
    architecture: { ...spec },
    parameters,
    tensors: store.tensors.size,
    dtypes: [...dtypes],
    notes,
  };
  if ((await source.has('tokenizer.json')) && (await source.has('tokenizer_config.json'))) {
    const tok = loadTokenizer(
      await source.readJson('tokenizer.json'),
      await source.readJson('tokenizer_config.json'),
    );
    if (tok.chatTemplate) {
      const user = 'hey I feel bored';
      const p = buildPrompt(tok, { conversation: { system: null, user } });
      const seg = (s: 'prefix' | 'query' | 'postfix') =>
        p.tokens.filter((t) => t.segment === s).map((t) => t.text);
      info.sample = { user, prefix: seg('prefix'), query: seg('query'), postfix: seg('postfix') };
    } else notes.push('the tokenizer has no chat template');
  }
  return info;
}
