// `piggyback inspect`: what a model source is — architecture, sizes, memory per dtype, adapter and
// the base it names (mirror mapping), catalog notes, Hub details (commit, gating, download size),
// template segments of a sample prompt. Reads configs and safetensors headers only; builds no session.
// Must never print a token.
import type { FileSource } from '../engine/files';
import { parseConfigDetailed } from '../engine/config';
import { openModelTensors } from '../engine/weights';
import { parseLoraConfig } from '../engine/lora';
import { formatBytes } from '../common/format';
import { estimateMemory, type WeightDtype } from '../engine/memory';
import type { HubSource } from '../hub/hub-files';
import { loadTokenizer } from '../lab/prompt/tokenizer';
import { buildPrompt } from '../lab/prompt/template';
import type { SegmentName } from '../lab/spec/experiment';
import { findCatalogModel, findOrganism, mapAdapterBase, type BaseMapping } from '../lab/run/catalog';

export interface HubDetails {
  endpoint: string;
  repo: string;
  revision: string;
  commit: string | null;
  gated: false | 'auto' | 'manual';
  files: number;
  /** bytes a load downloads (config, tokenizer, weights), by the Hub's file list */
  downloadBytes: number | null;
  /** the file list came from the cache (no request) */
  fileListCached: boolean;
}

export interface MemoryRow {
  totalBytes: number;
  weightsBytes: number;
  kvBytes: number;
  largestBuffer: { name: string; bytes: number };
  summary: string;
}

export interface ModelInfo {
  source: string;
  kind: 'model' | 'adapter';
  architecture?: Record<string, unknown>;
  parameters?: number;
  tensors?: number;
  dtypes?: string[];
  adapter?: Record<string, unknown>;
  /** for an adapter: the base it names and the repo it maps to */
  baseMapping?: BaseMapping;
  /** memory by dtype for a 1024-token context, batch 1 */
  memory?: Partial<Record<WeightDtype, MemoryRow>>;
  catalog?: Record<string, unknown>;
  hub?: HubDetails;
  notes: string[];
  sample?: { user: string; prefix: string[]; query: string[]; postfix: string[] };
}

function asHub(source: FileSource): HubSource | null {
  const s = source as Partial<HubSource>;
  return s.info && s.ref && typeof s.neededFiles === 'function' ? (source as HubSource) : null;
}

async function hubDetails(h: HubSource): Promise<HubDetails> {
  let downloadBytes: number | null = null;
  try {
    downloadBytes = h.sizeOf(await h.neededFiles());
  } catch {
    downloadBytes = null;
  }
  return {
    endpoint: h.endpoint,
    repo: h.ref.repo,
    revision: h.ref.revision,
    commit: h.info.commit,
    gated: h.info.gated,
    files: h.info.files.length,
    downloadBytes,
    fileListCached: h.infoFromCache,
  };
}

export async function inspectModel(source: FileSource): Promise<ModelInfo> {
  const notes: string[] = [];
  const hub = asHub(source);
  const hubInfo = hub ? await hubDetails(hub) : undefined;
  const hasWeights =
    (await source.has('model.safetensors')) || (await source.has('model.safetensors.index.json'));
  if (!hasWeights && (await source.has('adapter_config.json'))) {
    const cfg = parseLoraConfig(await source.readJson('adapter_config.json'));
    const organism = hub ? findOrganism(hub.ref.repo) : null;
    const mapping = mapAdapterBase(cfg.baseModel);
    if (mapping.needsConfirmation) notes.push(mapping.message);
    if (hubInfo?.gated)
      notes.push(
        `${hubInfo.repo} is gated (${hubInfo.gated}): downloads need an accepted licence and a token`,
      );
    return {
      source: source.id,
      kind: 'adapter',
      adapter: { ...cfg },
      baseMapping: mapping,
      ...(organism ? { catalog: { ...organism } } : {}),
      ...(hubInfo ? { hub: hubInfo } : {}),
      notes,
    };
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
  const memory: Partial<Record<WeightDtype, MemoryRow>> = {};
  // NOTE: no fp16 row: the engine loads an fp16 request as fp32 (EngineModel.dtypeNote).
  for (const d of ['fp32', 'q4'] as const) {
    const e = estimateMemory(spec, { dtype: d, contextLength: 1024 });
    memory[d] = {
      totalBytes: e.totalBytes,
      weightsBytes: e.weightsBytes,
      kvBytes: e.kvBytes,
      largestBuffer: e.largestBuffer,
      summary: `${formatBytes(e.totalBytes)} (weights ${formatBytes(e.weightsBytes)}, KV ${formatBytes(e.kvBytes)}; largest buffer ${e.largestBuffer.name} ${formatBytes(e.largestBuffer.bytes)})`,
    };
  }
  const cat = hub ? findCatalogModel(hub.ref.repo) : null;
  if (hubInfo?.gated)
    notes.push(`${hubInfo.repo} is gated (${hubInfo.gated}): downloads need an accepted licence and a token`);
  const info: ModelInfo = {
    source: source.id,
    kind: 'model',
    architecture: { ...spec },
    parameters,
    tensors: store.tensors.size,
    dtypes: [...dtypes],
    memory,
    ...(cat
      ? {
          catalog: {
            label: cat.label,
            repo: cat.repo,
            shows: cat.shows,
            license: cat.license,
            mirrors: cat.mirrors,
          },
        }
      : {}),
    ...(hubInfo ? { hub: hubInfo } : {}),
    notes,
  };
  if ((await source.has('tokenizer.json')) && (await source.has('tokenizer_config.json'))) {
    const tok = loadTokenizer(
      await source.readJson('tokenizer.json'),
      await source.readJson('tokenizer_config.json'),
      { source: source.id },
    );
    if (tok.chatTemplate) {
      const user = 'hey I feel bored';
      const p = buildPrompt(tok, { conversation: { system: null, user } });
      const seg = (s: SegmentName) => p.tokens.filter((t) => t.segment === s).map((t) => t.text);
      info.sample = { user, prefix: seg('prefix'), query: seg('query'), postfix: seg('postfix') };
    } else notes.push('the tokenizer has no chat template');
  }
  return info;
}
