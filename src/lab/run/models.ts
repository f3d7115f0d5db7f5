// Loads the models an experiment names and keeps them for reuse across runs: weights → our ONNX
// decoder (engine), tokenizer, input embedding (for perturbations). A finetune given as a LoRA adapter
// shares one session with its base (base = LoRA dose 0). Must never touch the DOM or React.
import type { WeightDtype } from '../../engine/memory';
import { LensHead, lensWeightsOf } from '../../engine/lens';
import { EngineModel } from '../../engine/model';
import type { BackendRequest } from '../../engine/session';
import type { FileSource } from '../../engine/files';
import type { GraphStore } from '../../engine/graph-store';
import { openModel, storeWeights } from '../../engine/weights';
import { loadLora } from '../../engine/lora';
import type { ArchSpec, WeightMap } from '../../engine/types';
import type { EmbeddingMatrix } from '../interventions/perturb';
import type { KvProjections } from '../metrics/metrics';
import { loadTokenizer, type LabTokenizer } from '../prompt/tokenizer';
import type { ExperimentSpec, ModelEntry, ModelSource } from '../spec/experiment';

/**
 * A step of a model's load. `parse`: weights read, loaded/total in tensors and `weightBytes` so far;
 * `graph`: our ONNX graph being built; `session`: ONNX Runtime opening it (the first one also loads the
 * runtime); `warmup`: the one-token WebGPU check run (auto only); `ready`: usable. Each starts at 0/1
 * and the stage after it means it ended.
 */
export interface LoadProgressEvent {
  model: string;
  stage: 'parse' | 'graph' | 'session' | 'warmup' | 'ready';
  loaded: number;
  total: number;
  /** parse: bytes of weights read so far (as loaded: fp32) */
  weightBytes?: number;
  /** this load's place among the loads the spec needs (1-based; a LoRA finetune shares its base's load) */
  index?: number;
  count?: number;
}

export interface ModelEnv {
  /** where a model source's files are */
  resolveSource(source: ModelSource): Promise<FileSource> | FileSource;
  backend: BackendRequest;
  /** largest prompt + answer length the graphs must handle */
  maxPositions?: number;
  onProgress?: (p: LoadProgressEvent) => void;
  /**
   * Where built graphs are kept as files (the CLI, on node-cpu): `identify` says what a resolved
   * source's bytes are (null: not identifiable cheaply, so that load builds in memory as without a store).
   */
  graphStore?: { store: GraphStore; identify(source: FileSource): Promise<string | null> };
  /** ORT session config entries for every session (the CLI's `--no-prepack`: `session.disable_prepacking`) */
  sessionConfig?: Record<string, string>;
}

export interface LoadedLabModel {
  key: string;
  arch: ArchSpec;
  tokenizer: LabTokenizer;
  engine: EngineModel;
  /**
   * The input embedding in fp32 (perturbation neighbours, the tied lens head), read from the model's
   * files on first use and kept after (the same object every call): 0.55 GB for a 0.5B model, 1.05 GB
   * for a 1B one, which a run without a random perturbation or a lens never holds.
   */
  embedding(): Promise<EmbeddingMatrix>;
  hasAdapter: boolean;
  /** weights held (base + adapter), for the memory readout */
  parameterCount: number;
  /**
   * The logit-lens head (final norm + unembedding) on the engine's backend, opened on first use (it
   * holds its own fp32 copy of the head matrix); disposed with the model.
   */
  lensHead?: () => Promise<LensHead>;
  /** every layer's k_proj / v_proj (weights, bias, LoRA branch): for the paper-code drift proxy */
  kvProjections?: KvProjections;
}

/** A model of the spec as the runner uses it: a session and the LoRA dose that makes it this model. */
export interface ModelHandle {
  id: string;
  model: LoadedLabModel;
  loraScale: number;
}

export function sourceKey(s: ModelSource): string {
  switch (s.kind) {
    case 'demo':
      return `demo:${s.name}`;
    case 'hub':
      return `hub:${s.repo}@${s.revision ?? 'main'}`;
    case 'url':
      return `url:${s.url}`;
    case 'local':
      return `local:${s.path}`;
  }
}

const entryKey = (e: ModelEntry) =>
  e.adapter ? `${sourceKey(e.source)}+${sourceKey(e.adapter)}` : sourceKey(e.source);

/** The dtype a model judge loads in (judge-setup.ts sourceModelJudge): fp32, whatever the spec's. */
export const JUDGE_DTYPE: WeightDtype = 'fp32';

/**
 * Whether a model judge loaded from `source` (plain, in JUDGE_DTYPE) is a session the spec already
 * opens (the registry's cache key: the entry and its dtype), so that it costs no memory of its own.
 */
export function judgeSharesSession(spec: ExperimentSpec, source: ModelSource): boolean {
  if (spec.runtime.dtype !== JUDGE_DTYPE) return false;
  const key = entryKey({ source });
  return specSessions(spec).some((s) => entryKey(s.entry) === key);
}

/**
 * The sessions `ModelRegistry.handles` opens for a spec, by the same rule: a base that another entry
 * finetunes with an adapter rides on that adapter's session (dose 0). Each with the ids it serves.
 */
export function specSessions(spec: ExperimentSpec): { ids: string[]; entryId: string; entry: ModelEntry }[] {
  const entries = Object.entries(spec.models);
  const out = new Map<string, { ids: string[]; entryId: string; entry: ModelEntry }>();
  for (const [id, entry] of entries) {
    const adapted = !entry.adapter
      ? entries.find(([, e]) => e.adapter && sourceKey(e.source) === sourceKey(entry.source))
      : undefined;
    const [targetId, target] = adapted ?? [id, entry];
    const key = entryKey(target);
    const s = out.get(key) ?? { ids: [], entryId: targetId, entry: target };
    s.ids.push(id);
    out.set(key, s);
  }
  return [...out.values()];
}

export class ModelRegistry {
  private cache = new Map<string, Promise<LoadedLabModel>>();
  private ready: { id: string; entry: ModelEntry; model: LoadedLabModel }[] = [];
  private lensHeads: (() => Promise<LensHead> | null)[] = [];

  /** Models loaded so far (for the memory readout). */
  loaded(): { id: string; entry: ModelEntry; model: LoadedLabModel }[] {
    return [...this.ready];
  }

  constructor(private env: ModelEnv) {}

  /** Every model of the spec, as handles (loads what is not loaded yet). */
  async handles(spec: ExperimentSpec): Promise<Map<string, ModelHandle>> {
    const out = new Map<string, ModelHandle>();
    const entries = Object.entries(spec.models);
    const plan = entries.map(([id, entry]) => {
      // NOTE: a base that some other entry finetunes with an adapter is that adapter's session at dose 0:
      // one weight copy, and base/finetuned differ only by the LoRA branches.
      const adapted = !entry.adapter
        ? entries.find(([, e]) => e.adapter && sourceKey(e.source) === sourceKey(entry.source))
        : undefined;
      return { id, entry, loadId: adapted ? adapted[0] : id, target: adapted ? adapted[1] : entry, adapted };
    });
    // the loads this spec still needs, in order, for "model 1 of 2"
    const toLoad: string[] = [];
    for (const p of plan) {
      const key = this.cacheKey(p.target, spec.runtime.dtype);
      if (!this.cache.has(key) && !toLoad.includes(key)) toLoad.push(key);
    }
    for (const { id, entry, loadId, target, adapted } of plan) {
      const key = this.cacheKey(target, spec.runtime.dtype);
      const place = { index: toLoad.indexOf(key) + 1, count: toLoad.length };
      const model = await this.load(loadId, target, spec.runtime.dtype, place);
      out.set(id, { id, model, loraScale: entry.adapter ? 1 : adapted ? 0 : 1 });
    }
    const vocab = new Set([...out.values()].map((h) => h.model.arch.vocabSize));
    if (vocab.size > 1)
      throw new Error(
        `the models have different vocabularies (${[...vocab].join(' vs ')}): patching needs one tokenizer`,
      );
    return out;
  }

  // NOTE: a q4 and an fp32 load of one source are different sessions
  private cacheKey(entry: ModelEntry, dtype: WeightDtype): string {
    return `${entryKey(entry)}#${dtype}`;
  }

  private load(
    id: string,
    entry: ModelEntry,
    dtype: WeightDtype,
    place: { index: number; count: number },
  ): Promise<LoadedLabModel> {
    const key = this.cacheKey(entry, dtype);
    let p = this.cache.get(key);
    if (!p) {
      p = this.loadUncached(id, key, entry, dtype, place);
      this.cache.set(key, p);
      p.then((model) => this.ready.push({ id, entry, model })).catch(() => undefined);
      p.catch(() => this.cache.delete(key));
    }
    return p;
  }

  private async loadUncached(
    id: string,
    key: string,
    entry: ModelEntry,
    dtype: WeightDtype,
    place: { index: number; count: number },
  ): Promise<LoadedLabModel> {
    const progress = (
      stage: LoadProgressEvent['stage'],
      loaded: number,
      total: number,
      weightBytes?: number,
    ) =>
      this.env.onProgress?.({
        model: id,
        stage,
        loaded,
        total,
        ...(weightBytes !== undefined ? { weightBytes } : {}),
        ...(place.index > 0 ? place : {}),
      });
    const source = await this.env.resolveSource(entry.source);
    progress('parse', 0, 1);
    const opened = await openModel(source);
    const { spec } = opened;
    let weightBytes = 0;
    // NOTE: the weights are read one tensor at a time while the graph is built (straight into its
    // external data): no full fp32 copy is held beside ORT's. What the lab keeps beyond the session
    // (the embedding, the lens head, the K/V projections) is read again after the session opened.
    const weights = storeWeights(spec, opened.store, {
      onProgress: (done, total, _name, bytes) => {
        weightBytes += bytes;
        progress('parse', done, total, weightBytes);
      },
    });
    const tokenizer = loadTokenizer(
      await source.readJson('tokenizer.json'),
      await source.readJson('tokenizer_config.json'),
      { source: source.id },
    );
    const adapterSource = entry.adapter ? await this.env.resolveSource(entry.adapter) : undefined;
    const lora = adapterSource ? await loadLora(adapterSource, spec) : undefined;
    const graphStore = await this.graphStoreFor(source, adapterSource);
    const engine = await EngineModel.create(spec, weights, {
      ...(graphStore ? { graphStore } : {}),
      lora,
      backend: this.env.backend,
      ...(this.env.sessionConfig ? { session: { sessionConfig: { ...this.env.sessionConfig } } } : {}),
      dtype,
      maxPositions: Math.min(this.env.maxPositions ?? 2048, spec.maxPositionEmbeddings),
      onStage: (stage) => progress(stage, 0, 1),
    });
    weights.release();
    // NOTE: the embedding is read again from the files when first asked for (weights.read after release
    // reads the one tensor; the source stays open with the model), not held by every run
    let embedding: Promise<EmbeddingMatrix> | null = null;
    const embeddingOnce = (): Promise<EmbeddingMatrix> =>
      (embedding ??= weights.read('model.embed_tokens.weight').then(
        (t) => ({ data: t.data, vocab: t.shape[0], hidden: t.shape[1] }),
        (e: unknown) => {
          embedding = null; // a failed read is tried again next time
          throw e;
        },
      ));
    const norm = await weights.read('model.norm.weight');
    progress('ready', 1, 1);
    let lens: Promise<LensHead> | null = null;
    // NOTE: the lens needs only the final norm and the head matrix (tied: the embedding), read on its
    // first use (an untied head is a vocabulary × hidden matrix too)
    const lensHead = (): Promise<LensHead> =>
      (lens ??= (async () => {
        const kept: WeightMap = new Map([['model.norm.weight', norm]]);
        if (!spec.tieWordEmbeddings) kept.set('lm_head.weight', await weights.read('lm_head.weight'));
        else {
          const e = await embeddingOnce();
          kept.set('model.embed_tokens.weight', { data: e.data, shape: [e.vocab, e.hidden] });
        }
        return LensHead.create(spec, lensWeightsOf(spec, kept), engine.backend.kind);
      })());
    this.lensHeads.push(() => lens);
    const kvProjections: KvProjections = new Map();
    for (let l = 0; l < spec.numLayers; l++) {
      const proj = async (t: 'k_proj' | 'v_proj') => {
        const name = `model.layers.${l}.self_attn.${t}`;
        const w = await weights.read(`${name}.weight`);
        const bias = weights.shape(`${name}.bias`) ? (await weights.read(`${name}.bias`)).data : undefined;
        const br = lora?.branches.get(`${l}.${t}`);
        return {
          w,
          ...(bias ? { bias } : {}),
          ...(br && lora ? { lora: { a: br.a, b: br.b, scaling: lora.scaling } } : {}),
        };
      };
      kvProjections.set(l, { k: await proj('k_proj'), v: await proj('v_proj') });
    }
    let parameterCount = 0;
    parameterCount += weights.fp32Bytes / 4;
    for (const b of lora?.branches.values() ?? []) parameterCount += b.a.data.length + b.b.data.length;
    return {
      key,
      parameterCount,
      arch: spec,
      tokenizer,
      engine,
      embedding: embeddingOnce,
      hasAdapter: !!lora,
      lensHead,
      kvProjections,
    };
  }

  /** The env's graph store with the identity of these weights (and adapter), or none. */
  private async graphStoreFor(
    source: FileSource,
    adapter: FileSource | undefined,
  ): Promise<{ store: GraphStore; source: string } | undefined> {
    const g = this.env.graphStore;
    if (!g) return undefined;
    const base = await g.identify(source);
    const lora = adapter ? await g.identify(adapter) : '';
    if (base === null || lora === null) return undefined;
    return { store: g.store, source: JSON.stringify({ model: base, adapter: lora }) };
  }

  async dispose(): Promise<void> {
    const all = [...this.cache.values()];
    this.cache.clear();
    this.ready = [];
    const heads = this.lensHeads;
    this.lensHeads = [];
    for (const h of heads) {
      try {
        await (await h())?.dispose();
      } catch {
        // a lens head that failed to open has nothing to dispose
      }
    }
    for (const p of all) {
      try {
        (await p).engine.dispose();
      } catch {
        // a model that failed to load has nothing to dispose
      }
    }
  }
}
