// Runs an experiment spec: renders the prompt, applies each condition's perturbation and patch,
// streams every condition's answer, and computes its metrics; also the patching sweep and the prefix
// drift. The one place where lab semantics meet the engine; it never touches the DOM, React or ORT
// directly, and never lets a cache or tensor it made outlive the call.
import { CancelledError } from '../../common/abort';
import { errorMessage } from '../../common/errors';
import { generate } from '../../engine/generate';
import type { ForwardInput, PatchSet, Tensor } from '../../engine/types';
import type { Condition, ExperimentSpec, PatchComponent, PatchSettings } from '../spec/experiment';
import {
  klFromLogits,
  continuationLogProb,
  logProbMargin,
  logitsAt,
  normalizedRestoration,
  prefixDrift,
  codeProxyKv,
  topK,
} from '../metrics/metrics';
import { ModelRegistry, type ModelEnv, type ModelHandle } from './models';
import {
  buildPatchSet,
  resolveLayers,
  resolvePositions,
  type ModelDims,
  type PatchSpec,
  type SourceActivations,
} from '../interventions/patch';
import {
  applyEdits,
  bestAndAvg,
  randomPerturbations,
  segmentsOf,
  type PerturbationTrial,
  type SegmentedPrompt,
} from '../interventions/perturb';
import type {
  AttentionResult,
  ConditionResult,
  DriftResult,
  LensCondition,
  LensResult,
  PromptToken,
  PromptView,
  RunResult,
  SweepResult,
  TrialResult,
} from '../spec/results';
import { planSweep } from '../interventions/sweep';
import { runAttention, runHeadSweep, type AttentionOptions } from './attention';
import { runPatchSweep, type SweepMethod } from './sweep-run';
import { NeighbourIndex } from './neighbours';
import { buildPrompt, type SplitPrompt } from '../prompt/template';
import type { LabTokenizer } from '../prompt/tokenizer';

export interface RunCallbacks {
  onPrompt?: (prompt: PromptView) => void;
  onToken?: (condition: string, tokenId: number, text: string) => void;
  onCondition?: (result: ConditionResult) => void;
  signal?: AbortSignal;
  /**
   * also generate every random-perturbation trial's whole answer (ConditionResult.trials): trials − 1
   * more answers per such condition, so off unless asked (the UI asks; evaluations and the CLI do not)
   */
  trialAnswers?: boolean;
}

export interface SweepOptions {
  component: PatchComponent;
  /** default: every prefix position */
  positions?: number[];
  /** rows per forward call; default 16 ('full'), every layer of one position ('prefix-cache') */
  batchSize?: number;
  /**
   * 'prefix-cache' (default): a cell patched at position p continues the unpatched run's cache of
   * positions < p and runs only p..T−1 (run/sweep-run.ts); 'full': every cell runs the whole prompt
   * (the reference the faster way is tested against); the same values up to fp32 rounding
   */
  method?: SweepMethod;
  onProgress?: (partial: SweepResult, done: number, total: number) => void;
  signal?: AbortSignal;
  /**
   * a layer × KV-head grid instead (component 'kv' only): each cell patches one KV head at every
   * position of `positions` (default the prefix); see run/attention.ts `runHeadSweep`
   */
  perHead?: boolean;
}

const NEXT_TOKEN_K = 8;
/** random-perturbation trial answers decoded together, at most */
const TRIAL_BATCH = 16;

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

export function dimsOf(h: ModelHandle): ModelDims {
  const a = h.model.arch;
  return { numLayers: a.numLayers, hidden: a.hiddenSize, kvHeads: a.numKvHeads, headDim: a.headDim };
}

/** The base model: role 'base', else the id 'base', else the first model. */
export function baseModelId(spec: ExperimentSpec): string {
  const byRole = Object.entries(spec.models).find(([, m]) => m.role === 'base');
  if (byRole) return byRole[0];
  return spec.models.base ? 'base' : Object.keys(spec.models)[0];
}

/** The finetuned model: role 'finetuned', else the id 'finetuned', else the first non-base model. */
export function finetunedModelId(spec: ExperimentSpec): string {
  const byRole = Object.entries(spec.models).find(([, m]) => m.role === 'finetuned');
  if (byRole) return byRole[0];
  if (spec.models.finetuned) return 'finetuned';
  const base = baseModelId(spec);
  return Object.keys(spec.models).find((id) => id !== base) ?? base;
}

export function promptView(
  p: SegmentedPrompt & { text?: string },
  templateArgs: PromptView['templateArgs'],
): PromptView {
  const tokens: PromptToken[] = p.tokens.map((t) => ({
    id: t.id,
    text: t.text,
    segment: t.segment,
    ...(t.edited ? { edited: true } : {}),
  }));
  return { text: p.text ?? tokens.map((t) => t.text).join(''), tokens, segments: p.segments, templateArgs };
}

/** The patch a condition actually applied, in words: its `ConditionResult.patchSummary`. */
export function patchSummary(patch: PatchSettings, numLayers: number, positions: number): string {
  const layers = resolveLayers(patch.layers, patch.component, numLayers);
  const comp = patch.component === 'kv' ? 'K/V' : 'residual';
  const layerText =
    patch.layers === 'all'
      ? 'all layers'
      : layers.length === 1
        ? `layer ${layers[0]}`
        : `layers ${layers.join(', ')}`;
  const posText = typeof patch.positions === 'string' ? patch.positions : 'picked';
  const headText = patch.heads
    ? ` · KV head${patch.heads.length === 1 ? '' : 's'} ${patch.heads.join(', ')}`
    : '';
  return `${comp}${headText} · ${layerText} · ${positions} ${posText} positions · from ${patch.source}`;
}

/**
 * The prompt every condition of a spec starts from, rendered with the finetuned model's tokenizer (as
 * `Lab.prepare` does; `lab/export/plan.ts` uses it without loading any weights). A date the template
 * read from the clock is pinned into the view's template arguments.
 */
export function renderSpecPrompt(
  tokenizer: LabTokenizer,
  spec: ExperimentSpec,
): { prompt: SplitPrompt; view: PromptView } {
  const prompt = buildPrompt(tokenizer, {
    conversation: { system: spec.conversation.system, user: spec.conversation.user },
    templateArgs: spec.conversation.templateArgs,
  });
  const templateArgs = { ...spec.conversation.templateArgs };
  if (prompt.dateString && templateArgs.date_string === undefined)
    templateArgs.date_string = prompt.dateString;
  return { prompt, view: promptView(prompt, templateArgs) };
}

/**
 * One lab session: a model registry reused across runs (the worker and the CLI each hold one).
 */
export class Lab {
  readonly registry: ModelRegistry;
  /** embedding neighbours for perturbations and `neighbours`: searched graph-side, kept per model */
  private readonly nbIndex = new NeighbourIndex();

  constructor(env: ModelEnv) {
    this.registry = new ModelRegistry(env);
  }

  /** Loads the models and renders the prompt. */
  async prepare(
    spec: ExperimentSpec,
  ): Promise<{ prompt: SplitPrompt; view: PromptView; handles: Map<string, ModelHandle> }> {
    const handles = await this.registry.handles(spec);
    return { ...renderSpecPrompt(handles.get(finetunedModelId(spec))!.model.tokenizer, spec), handles };
  }

  async run(spec: ExperimentSpec, cb: RunCallbacks = {}): Promise<RunResult> {
    const { prompt, view, handles } = await this.prepare(spec);
    cb.onPrompt?.(view);
    const ctx = new RunContext(spec, handles, prompt, cb.signal, this.nbIndex);
    const results: ConditionResult[] = [];
    for (const cond of spec.conditions) {
      throwIfAborted(cb.signal);
      let result: ConditionResult;
      try {
        result = await ctx.runCondition(cond, view.templateArgs, cb);
      } catch (e) {
        if (cb.signal?.aborted) throw new CancelledError();
        result = {
          id: cond.id,
          label: cond.label,
          model: cond.model,
          prompt: view,
          text: '',
          tokenIds: [],
          done: true,
          metrics: {},
          nextToken: [],
          error: errorMessage(e),
        };
      }
      results.push(result);
      cb.onCondition?.(result);
    }
    const backend = handles.get(finetunedModelId(spec))!.model.engine.backend;
    return {
      specVersion: spec.version,
      backend: backend.kind + (backend.adapter ? ` (${backend.adapter})` : ''),
      prompt: view,
      conditions: results,
    };
  }

  /** Layer × position grid: patch one (site, position) of the base run into the finetuned run. */
  async sweep(spec: ExperimentSpec, opts: SweepOptions): Promise<SweepResult> {
    const { prompt, handles } = await this.prepare(spec);
    const ctx = new RunContext(spec, handles, prompt, opts.signal);
    if (opts.perHead) {
      if (opts.component !== 'kv') throw new Error('a per-head sweep patches K/V: use component "kv"');
      return runHeadSweep(ctx, opts);
    }
    const ft = handles.get(finetunedModelId(spec))!;
    const base = handles.get(baseModelId(spec))!;
    const ids = prompt.tokens.map((t) => t.id);
    const dims = dimsOf(ft);
    const layers =
      opts.component === 'kv'
        ? Array.from({ length: dims.numLayers }, (_, l) => l)
        : Array.from({ length: dims.numLayers + 1 }, (_, l) => l);
    const positions =
      opts.positions ??
      Array.from(
        { length: prompt.segments.prefix[1] - prompt.segments.prefix[0] },
        (_, i) => prompt.segments.prefix[0] + i,
      );
    const source = await ctx.activations(base, ids, opts.component);
    const baseLogits = await ctx.lastLogits(base, ids);
    const ftLogits = await ctx.lastLogits(ft, ids);
    const klFt = klFromLogits(baseLogits, ftLogits);
    const method = opts.method ?? 'prefix-cache';
    const plan = planSweep({
      component: opts.component,
      layers,
      positions,
      // NOTE: with the prefix cache a call runs only the tokens from its position on, so by default one
      // call holds every layer of one position (the rows share that position's cached prefix)
      maxBatchSize: opts.batchSize ?? (method === 'full' ? 16 : layers.length),
      metric: 'restoration of KL(base ‖ patched) at the first answer token',
      order: method === 'full' ? 'layer' : 'position',
    });
    const labels = prompt.tokens.map((t) => t.text);
    const toResult = (values: Float64Array, done: number, total: number): SweepResult => ({
      component: opts.component,
      metric: plan.metric,
      layers,
      positions,
      positionLabels: positions.map((p) => labels[p] ?? String(p)),
      values: Array.from(values, (v) => (Number.isNaN(v) ? NaN : v)),
      done: done === total,
    });
    const result = await runPatchSweep({
      engine: ft.model.engine,
      ids,
      loraScale: ft.loraScale,
      component: opts.component,
      source,
      dims,
      plan,
      method,
      metric: (logits) => normalizedRestoration(klFromLogits(baseLogits, logits), klFt, 0),
      signal: opts.signal,
      onProgress: (p) => opts.onProgress?.(toResult(p.result.values, p.done, p.total), p.done, p.total),
    });
    return toResult(result.values, 1, 1);
  }

  /** Attention mass from the answer positions onto prefix / query / postfix / answer, per condition. */
  async attention(spec: ExperimentSpec, opts: AttentionOptions = {}): Promise<AttentionResult> {
    const { prompt, handles } = await this.prepare(spec);
    return runAttention(new RunContext(spec, handles, prompt, opts.signal), opts);
  }

  /** Prefix drift per layer: TReFT's L_K and L_V of the finetuned model's prefix K/V vs base. */
  async drift(spec: ExperimentSpec): Promise<DriftResult> {
    const { prompt, handles } = await this.prepare(spec);
    const ctx = new RunContext(spec, handles, prompt);
    const ids = prompt.tokens.map((t) => t.id);
    const ft = await ctx.activations(handles.get(finetunedModelId(spec))!, ids, 'kv');
    const base = await ctx.activations(handles.get(baseModelId(spec))!, ids, 'kv');
    const [s, e] = prompt.segments.prefix;
    const positions = Array.from({ length: e - s }, (_, i) => s + i);
    const d = prefixDrift({ k: ft.k!, v: ft.v! }, { k: base.k!, v: base.v! }, positions);
    // the paper's code: k_proj / v_proj of the residual entering each layer, before the input norm
    const ftH = handles.get(finetunedModelId(spec))!;
    const baseH = handles.get(baseModelId(spec))!;
    let code: DriftResult['code'];
    if (ftH.model.kvProjections && baseH.model.kvProjections) {
      const ftResid = await ctx.activations(ftH, ids, 'resid');
      const baseResid = await ctx.activations(baseH, ids, 'resid');
      const c = prefixDrift(
        codeProxyKv(ftResid.resid!, ftH.model.kvProjections, positions, ftH.loraScale),
        codeProxyKv(baseResid.resid!, baseH.model.kvProjections, positions, baseH.loraScale),
        positions,
      );
      code = { lk: c.lK, lv: c.lV, lkv: c.lKV };
    }
    return { layers: d.layers, lk: d.lK, lv: d.lV, lkv: d.lKV, ...(code ? { code } : {}) };
  }

  /**
   * The logit lens per condition: the residual stream entering each layer (sites 0 … numLayers, read by
   * the engine's residual taps in one forward) through the final norm and the unembedding (the model's
   * lens head, a small separate session), at the position predicting the first answer token — or, with
   * `spec.lens.positions` 'answer', at every position of the finetuned model's greedy answer,
   * teacher-forced in every condition. Tracks the finetuned and base models' first answer tokens (their
   * argmax) and `spec.lens.track`. Taps read each site before its patch: a residual patch at the lens
   * position itself is not seen (the K/V and prefix patches the lab makes never are there).
   */
  async lens(spec: ExperimentSpec, signal?: AbortSignal): Promise<LensResult> {
    const { prompt, handles } = await this.prepare(spec);
    const ctx = new RunContext(spec, handles, prompt, signal);
    const settings = spec.lens ?? {};
    const topK = settings.topK ?? 5;
    const mode = settings.positions ?? 'first';
    const tok = ctx.tokenizer;
    const ftTop = topK1(await ctx.finetunedDistribution());
    const baseTop = topK1(await ctx.baseDistribution());
    const tracked: LensResult['tracked'] = [{ id: ftTop, text: tok.idToText(ftTop), role: 'finetuned' }];
    if (baseTop !== ftTop) tracked.push({ id: baseTop, text: tok.idToText(baseTop), role: 'base' });
    for (const text of settings.track ?? []) {
      const id = tok.encode(text)[0];
      if (id === undefined || tracked.some((t) => t.id === id)) continue;
      tracked.push({ id, text: tok.idToText(id), role: 'extra' });
    }
    let answer: number[] = [];
    if (mode === 'answer') {
      const ft = ctx.handle(finetunedModelId(spec));
      const out = await generate(ft.model.engine, {
        inputIds: [ctx.promptIds()],
        loraScale: [ft.loraScale],
        maxNewTokens: settings.answerTokens ?? 8,
        stopTokens: [...new Set(ft.model.arch.eosTokenIds)],
        signal,
      });
      answer = out.rows[0].tokens;
    }
    const conditions: LensCondition[] = [];
    let sites: number[] = [];
    for (const cond of spec.conditions) {
      throwIfAborted(signal);
      try {
        const c = await ctx.lensCondition(cond, answer, topK, tracked);
        sites = c.sites;
        conditions.push(c.result);
      } catch (e) {
        if (signal?.aborted) throw new CancelledError();
        conditions.push({
          id: cond.id,
          label: cond.label,
          model: cond.model,
          positions: [],
          error: errorMessage(e),
        });
      }
    }
    return { sites, tracked, mode, topK, conditions };
  }

  /**
   * Restoration by layer: patch one layer (all `positions`, default the prefix) per batch row, plus one
   * more row with every layer patched at those positions (`allLayers`: the full-prefix patch of this
   * component, the reference the heatmap's cells are read against).
   */
  async layerSweep(
    spec: ExperimentSpec,
    component: PatchComponent,
    positionsArg?: number[],
    signal?: AbortSignal,
  ): Promise<LayerSweepValues> {
    const { prompt, handles } = await this.prepare(spec);
    const ctx = new RunContext(spec, handles, prompt, signal);
    const ft = handles.get(finetunedModelId(spec))!;
    const base = handles.get(baseModelId(spec))!;
    const ids = prompt.tokens.map((t) => t.id);
    const dims = dimsOf(ft);
    const layers = Array.from(
      { length: component === 'kv' ? dims.numLayers : dims.numLayers + 1 },
      (_, l) => l,
    );
    const positions = positionsArg ?? rangeOf(prompt.segments.prefix);
    const source = await ctx.activations(base, ids, component);
    const baseLogits = await ctx.baseDistribution();
    const klFt = klFromLogits(baseLogits, await ctx.finetunedDistribution());
    const patches: PatchSet = {};
    // NOTE: rows 0..n−1 patch one layer each; row n patches every layer (the full patch at `positions`)
    const rowLayers: PatchSpec['layers'][] = [...layers.map((l) => [l]), 'all'];
    rowLayers.forEach((l, row) =>
      buildPatchSet({
        spec: { component, layers: l, positions: { explicit: positions } },
        segments: prompt.segments,
        dims,
        batch: { batchSize: rowLayers.length, seqLen: ids.length },
        source,
        rows: [row],
        into: patches,
      }),
    );
    const out = await ctx.forwardRows(
      ft,
      rowLayers.map(() => ids),
      patches,
    );
    const restorationAt = (b: number) =>
      normalizedRestoration(klFromLogits(baseLogits, logitsAt(out, b, 0)), klFt, 0) ?? NaN;
    return {
      component,
      metric: 'restoration of KL(base ‖ patched) at the first answer token',
      layers,
      positions,
      values: layers.map((_, b) => restorationAt(b)),
      allLayers: restorationAt(layers.length),
    };
  }

  /** The n nearest neighbours of a token in a model's input embedding (dot product, itself excluded). */
  async neighbours(spec: ExperimentSpec, modelId: string | undefined, tokenId: number, n: number) {
    const handles = await this.registry.handles(spec);
    const h = handles.get(modelId ?? finetunedModelId(spec));
    if (!h) throw new Error(`unknown model "${modelId}"`);
    const e = await h.model.embedding();
    const tok = h.model.tokenizer;
    const nb = (await this.nbIndex.lookup(e, [tokenId], n, tok.vocabSize, searchBackend(h))).get(tokenId)!;
    return nb.ids.map((id, i) => ({ id, text: tok.idToText(id), score: nb.scores[i] }));
  }

  /** Encode text with the spec's tokenizer (no special tokens added). */
  async tokenize(spec: ExperimentSpec, text: string): Promise<{ id: number; text: string }[]> {
    const handles = await this.registry.handles(spec);
    const tok = handles.get(finetunedModelId(spec))!.model.tokenizer;
    return tok.encode(text).map((id) => ({ id, text: tok.idToText(id) }));
  }

  async dispose(): Promise<void> {
    await this.nbIndex.dispose();
    await this.registry.dispose();
  }
}

export interface LayerSweepValues {
  component: PatchComponent;
  metric: string;
  layers: number[];
  positions: number[];
  values: number[];
  /** restoration with every layer patched at `positions` at once (NaN when undefined) */
  allLayers: number;
}

/** the argmax of a logit row */
function topK1(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** where the neighbour search runs: node's CPU runtime beside a node-cpu model, else ORT's WASM */
function searchBackend(h: ModelHandle): 'node-cpu' | 'wasm' {
  return h.model.engine.backend.kind === 'node-cpu' ? 'node-cpu' : 'wasm';
}

function rangeOf([s, e]: [number, number]): number[] {
  return Array.from({ length: e - s }, (_, i) => s + i);
}

/** Per-run state: cached source activations and reference distributions. */
export class RunContext {
  private actCache = new Map<string, Promise<SourceActivations>>();
  private baseDist: Promise<Float32Array> | null = null;
  private ftDist: Promise<Float32Array> | null = null;
  readonly tokenizer: LabTokenizer;

  constructor(
    readonly spec: ExperimentSpec,
    readonly handles: Map<string, ModelHandle>,
    readonly prompt: SplitPrompt,
    readonly signal?: AbortSignal,
    /** where random perturbations get their neighbours (default: the JS scan) */
    readonly nbIndex?: NeighbourIndex,
  ) {
    this.tokenizer = handles.get(finetunedModelId(spec))!.model.tokenizer;
  }

  handle(id: string): ModelHandle {
    const h = this.handles.get(id);
    if (!h) throw new Error(`unknown model "${id}"`);
    return h;
  }

  /** Forward B rows of equal length; returns logits of the last position, [B, 1, V]. */
  async forwardRows(
    h: ModelHandle,
    rows: number[][],
    patches?: PatchSet,
    loraScale?: number,
  ): Promise<Tensor> {
    throwIfAborted(this.signal);
    const input: ForwardInput = {
      inputIds: rows,
      loraScale: rows.map(() => loraScale ?? h.loraScale),
      patches,
      taps: { logits: 'last' },
    };
    return (await h.model.engine.evaluate(input)).logits;
  }

  async lastLogits(
    h: ModelHandle,
    ids: number[],
    patches?: PatchSet,
    loraScale?: number,
  ): Promise<Float32Array> {
    return logitsAt(await this.forwardRows(h, [ids], patches, loraScale), 0, 0);
  }

  /** Base model's (or any source model's) taps on a prompt, cached per (model, prompt). */
  activations(
    h: ModelHandle,
    ids: number[],
    component: PatchComponent,
    loraScale = h.loraScale,
  ): Promise<SourceActivations> {
    const key = `${h.id}|${loraScale}|${component}|${ids.join(',')}`;
    let p = this.actCache.get(key);
    if (!p) {
      p = (async () => {
        throwIfAborted(this.signal);
        const L = h.model.arch.numLayers;
        const out = await h.model.engine.evaluate({
          inputIds: [ids],
          loraScale: [loraScale],
          taps:
            component === 'kv'
              ? { kv: Array.from({ length: L }, (_, l) => l), logits: 'last' }
              : { resid: Array.from({ length: L + 1 }, (_, l) => l), logits: 'last' },
        });
        return component === 'kv' ? { k: out.k, v: out.v } : { resid: out.resid };
      })();
      this.actCache.set(key, p);
    }
    return p;
  }

  baseDistribution(): Promise<Float32Array> {
    this.baseDist ??= this.lastLogits(this.handle(baseModelId(this.spec)), this.promptIds());
    return this.baseDist;
  }

  finetunedDistribution(): Promise<Float32Array> {
    this.ftDist ??= this.lastLogits(this.handle(finetunedModelId(this.spec)), this.promptIds());
    return this.ftDist;
  }

  promptIds(): number[] {
    return this.prompt.tokens.map((t) => t.id);
  }

  codec() {
    return {
      encode: (text: string) => this.tokenizer.encode(text),
      decode: (id: number) => this.tokenizer.idToText(id),
    };
  }

  /** The condition's patch for a prompt (source model run on that same prompt). */
  async patchFor(
    cond: Condition,
    p: SegmentedPrompt,
    seqLen: number,
  ): Promise<{ patches?: PatchSet; summary?: string }> {
    if (!cond.patch) return {};
    const target = this.handle(cond.model);
    const source = this.handle(cond.patch.source);
    const ids = p.tokens.map((t) => t.id);
    const acts = await this.activations(source, ids, cond.patch.component);
    // a per-head patch keeps the other heads at the target's own K/V on this prompt, at its own dose
    const own = cond.patch.heads
      ? await this.activations(target, ids, 'kv', cond.loraScale ?? target.loraScale)
      : undefined;
    const built = buildPatchSet({
      spec: cond.patch,
      segments: p.segments,
      dims: dimsOf(target),
      batch: { batchSize: 1, seqLen },
      source: acts,
      own,
    });
    const pos = resolvePositions(cond.patch.positions, p.segments, ids.length);
    let summary = patchSummary(cond.patch, target.model.arch.numLayers, pos.positions.length);
    if (!pos.matched) summary += ` (asked for ${pos.requested}, the query has only ${pos.positions.length})`;
    return { patches: built.patches, summary };
  }

  /**
   * One condition's logit lens (Lab.lens): its prompt (edits, or the best random trial as the run
   * picks it), its patch, one forward tapping every residual site, the lens head on the rows that
   * predict the first answer token (and each following `answer` token).
   */
  async lensCondition(
    cond: Condition,
    answer: number[],
    topK: number,
    tracked: { id: number }[],
  ): Promise<{ sites: number[]; result: LensCondition }> {
    const h = this.handle(cond.model);
    const loraScale = cond.loraScale ?? h.loraScale;
    const lensHead = h.model.lensHead;
    if (!lensHead) throw new Error('this model was loaded without a lens head');
    let p: SegmentedPrompt = this.prompt;
    let note = '';
    const pert = cond.perturbation;
    if (pert?.kind === 'edits') p = applyEdits(this.prompt, pert.edits, this.codec());
    else if (pert?.kind === 'random') {
      const base = await this.baseDistribution();
      const klFt = klFromLogits(base, await this.finetunedDistribution());
      const trials = randomPerturbations(this.prompt, pert, await h.model.embedding(), {
        codec: this.codec(),
        allowed: (id) => id < this.tokenizer.vocabSize,
      });
      const scores: (number | null)[] = [];
      for (const t of trials) {
        const tIds = t.prompt.tokens.map((x) => x.id);
        const { patches } = await this.patchFor(cond, t.prompt, tIds.length);
        scores.push(
          normalizedRestoration(
            klFromLogits(base, await this.lastLogits(h, tIds, patches, loraScale)),
            klFt,
            0,
          ),
        );
      }
      const pick = bestAndAvg(scores, true).bestTrial ?? 0;
      p = trials[pick].prompt;
      note = `trial ${pick + 1} of ${trials.length} (best)`;
    }
    p = { ...p, segments: segmentsOf(p.tokens) };
    const promptIds = p.tokens.map((t) => t.id);
    const ids = [...promptIds, ...answer.slice(0, -1)];
    const { patches, summary } = await this.patchFor(cond, p, ids.length);
    if (summary) note = note ? `${summary} · ${note}` : summary;
    throwIfAborted(this.signal);
    const L = h.model.arch.numLayers;
    const H = h.model.arch.hiddenSize;
    const sites = Array.from({ length: L + 1 }, (_, l) => l);
    const out = await h.model.engine.evaluate({
      inputIds: [ids],
      loraScale: [loraScale],
      patches,
      taps: { resid: sites, logits: 'last' },
    });
    const rows = Array.from({ length: Math.max(1, answer.length) }, (_, j) => promptIds.length - 1 + j);
    const x = new Float32Array(rows.length * sites.length * H);
    rows.forEach((pos, r) =>
      sites.forEach((l) =>
        x.set(out.resid.get(l)!.data.subarray(pos * H, (pos + 1) * H), (r * sites.length + l) * H),
      ),
    );
    const lens = await (
      await lensHead()
    ).apply(
      x,
      topK,
      tracked.map((t) => t.id),
    );
    const text = (id: number) => this.tokenizer.idToText(id);
    const allIds = [...promptIds, ...answer];
    const positions = rows.map((pos, r) => {
      const at = lens.slice(r * sites.length, (r + 1) * sites.length);
      return {
        position: pos,
        label: text(allIds[pos]),
        ...(answer.length ? { next: { id: answer[r], text: text(answer[r]) } } : {}),
        tracked: at.map((row) => row.trackedLogp.map(Math.exp)),
        top: at.map((row) =>
          row.topIds.map((id, i) => ({ id, text: text(id), prob: Math.exp(row.topLogp[i]) })),
        ),
      };
    });
    return {
      sites,
      result: {
        id: cond.id,
        label: cond.label,
        model: cond.model,
        positions,
        ...(note ? { note } : {}),
      },
    };
  }

  async runCondition(
    cond: Condition,
    templateArgs: PromptView['templateArgs'],
    cb: RunCallbacks,
  ): Promise<ConditionResult> {
    const h = this.handle(cond.model);
    const loraScale = cond.loraScale ?? h.loraScale;
    const metricsWanted = new Set(this.spec.metrics);
    const base = await this.baseDistribution();
    const ft = await this.finetunedDistribution();
    const klFt = klFromLogits(base, ft);

    // The prompt this condition runs: edits, or the best of the random trials by restoration.
    let p: SegmentedPrompt & { text?: string } = this.prompt;
    let trialsBest: number | null = null;
    let trialsAvg: number | null = null;
    let trialNote = '';
    let trials: PerturbationTrial[] | null = null;
    let shownTrial: number | undefined;
    const trialScores: (number | null)[] = [];
    const pert = cond.perturbation;
    if (pert?.kind === 'edits') {
      p = applyEdits(this.prompt, pert.edits, this.codec());
    } else if (pert?.kind === 'random') {
      const [s0, s1] = this.prompt.segments[pert.segment];
      const segmentIds = this.prompt.tokens.slice(s0, s1).map((t) => t.id);
      // NOTE: every token of the segment at once: one graph-side pass instead of a JS scan per token
      const embedding = await h.model.embedding();
      const table = await this.nbIndex?.lookup(
        embedding,
        segmentIds,
        pert.n,
        this.tokenizer.vocabSize,
        searchBackend(h),
      );
      trials = randomPerturbations(this.prompt, pert, embedding, {
        codec: this.codec(),
        allowed: (id) => id < this.tokenizer.vocabSize,
        neighbours: table ? (id) => table.get(id)?.ids : undefined,
      });
      for (const t of trials) {
        const ids = t.prompt.tokens.map((x) => x.id);
        const { patches } = await this.patchFor(cond, t.prompt, ids.length);
        const logits = await this.lastLogits(h, ids, patches, loraScale);
        trialScores.push(normalizedRestoration(klFromLogits(base, logits), klFt, 0));
      }
      const ba = bestAndAvg(trialScores, true);
      trialsBest = ba.best;
      trialsAvg = ba.avg;
      const pick = ba.bestTrial ?? 0;
      shownTrial = pick;
      p = trials[pick].prompt;
      trialNote = ` · trial ${pick + 1} of ${trials.length} (best)`;
    }
    p = { ...p, segments: segmentsOf(p.tokens) };
    const ids = p.tokens.map((t) => t.id);
    const { patches, summary } = await this.patchFor(cond, p, ids.length);

    const logits = await this.lastLogits(h, ids, patches, loraScale);
    const kl = klFromLogits(base, logits);
    const top = topK(logits, NEXT_TOKEN_K);

    let referenceMargin: number | null = null;
    const refs = this.spec.references;
    if (refs && metricsWanted.has('reference_margin') && refs.aligned.length && refs.misaligned.length) {
      const score = async (text: string) => {
        const cont = this.tokenizer.encode(text);
        if (cont.length === 0) return 0;
        const full = [...ids, ...cont];
        const patched = patches ? (await this.patchFor(cond, p, full.length)).patches : undefined;
        const out = await h.model.engine.evaluate({
          inputIds: [full],
          loraScale: [loraScale],
          patches: patched,
          taps: { logits: 'all' },
        });
        return continuationLogProb(out.logits, 0, ids.length - 1, cont).mean;
      };
      const aligned: number[] = [];
      for (const r of refs.aligned) aligned.push(await score(r));
      const misaligned: number[] = [];
      for (const r of refs.misaligned) misaligned.push(await score(r));
      referenceMargin = logProbMargin(aligned, misaligned);
    }

    const tokens = await this.answer(h, ids, patches, loraScale, (tok) =>
      cb.onToken?.(cond.id, tok, this.tokenizer.idToText(tok)),
    );

    // NOTE: the shown trial is picked by its first answer token only; every trial's whole answer is
    // returned too, so a reader can count how many trials really changed the answer (not just the best).
    let trialResults: TrialResult[] | undefined;
    if (trials && cb.trialAnswers) {
      const answers = new Map<number, number[]>([[shownTrial ?? 0, tokens]]);
      const rest = trials.map((_, i) => i).filter((i) => !answers.has(i));
      if (!cond.patch) {
        // NOTE: replacements are one for one, so every trial prompt has the same length: one batched
        // decode per chunk instead of a decode loop per trial (lab.test.ts replays each trial as edits,
        // one at a time, and expects the same answers).
        for (let k = 0; k < rest.length; k += TRIAL_BATCH) {
          const chunk = rest.slice(k, k + TRIAL_BATCH);
          const rows = chunk.map((j) => trials![j].prompt.tokens.map((x) => x.id));
          const out = await this.answersBatched(h, rows, loraScale);
          chunk.forEach((j, b) => answers.set(j, out[b]));
        }
      } else {
        // a patch's source activations depend on each trial's own prompt: one trial at a time
        for (const j of rest) {
          const tp = { ...trials[j].prompt, segments: segmentsOf(trials[j].prompt.tokens) };
          const tIds = tp.tokens.map((x) => x.id);
          const tPatch = (await this.patchFor(cond, tp, tIds.length)).patches;
          answers.set(j, await this.answer(h, tIds, tPatch, loraScale));
        }
      }
      trialResults = trials.map((t, i) => {
        const answer = answers.get(i) ?? [];
        return {
          index: i,
          restoration: trialScores[i] ?? null,
          edited: t.replacements.map((r) => r.position),
          replacements: t.replacements.map((r) => ({
            position: r.position,
            from: { id: r.from, text: this.tokenizer.idToText(r.from) },
            to: { id: r.to, text: this.tokenizer.idToText(r.to) },
          })),
          text: this.tokenizer.decode(answer),
          tokenIds: answer,
        };
      });
    }

    return {
      id: cond.id,
      label: cond.label,
      model: cond.model,
      prompt: promptView(p, templateArgs),
      text: this.tokenizer.decode(tokens),
      tokenIds: tokens,
      done: true,
      metrics: {
        klToBase: kl,
        restoration: normalizedRestoration(kl, klFt, 0),
        referenceMargin,
        trialsBest,
        trialsAvg,
        klFinetuned: klFt,
      },
      nextToken: top.ids.map((id, i) => ({ id, text: this.tokenizer.idToText(id), prob: top.probs[i] })),
      patchSummary: summary ? summary + trialNote : trialNote ? trialNote.slice(3) : undefined,
      ...(trialResults ? { trials: trialResults, shownTrial } : {}),
    };
  }

  /**
   * Whole answers for prompt rows of one length in one batched decode (no patches), with the same stop
   * tokens and stop strings as answer(): a row is cut after the first token whose text ends a stop string.
   */
  private async answersBatched(h: ModelHandle, rows: number[][], loraScale: number): Promise<number[][]> {
    const g = this.spec.generation;
    const stopStrings = g.stop ?? [];
    const out = await generate(h.model.engine, {
      inputIds: rows,
      loraScale: rows.map(() => loraScale),
      maxNewTokens: g.maxNewTokens,
      stopTokens: [...new Set(h.model.arch.eosTokenIds)],
      sampling: { temperature: g.temperature, topK: g.topK, topP: g.topP, seed: g.seed },
      signal: this.signal,
    });
    throwIfAborted(this.signal);
    return out.rows.map((r) => {
      if (!stopStrings.length) return r.tokens;
      for (let k = 1; k <= r.tokens.length; k++) {
        const text = this.tokenizer.decode(r.tokens.slice(0, k));
        if (stopStrings.some((s) => text.endsWith(s))) return r.tokens.slice(0, k);
      }
      return r.tokens;
    });
  }

  /** One whole answer with the spec's generation settings (stop tokens and strings), cancellable. */
  private async answer(
    h: ModelHandle,
    ids: number[],
    patches: PatchSet | undefined,
    loraScale: number,
    onToken?: (tok: number) => void,
  ): Promise<number[]> {
    const g = this.spec.generation;
    const stopIds = new Set(h.model.arch.eosTokenIds);
    const stopStrings = g.stop ?? [];
    const tokens: number[] = [];
    const stopper = new AbortController();
    const onAbort = () => stopper.abort();
    this.signal?.addEventListener('abort', onAbort);
    try {
      await generate(h.model.engine, {
        inputIds: [ids],
        patches,
        loraScale: [loraScale],
        maxNewTokens: g.maxNewTokens,
        stopTokens: [...stopIds],
        sampling: { temperature: g.temperature, topK: g.topK, topP: g.topP, seed: g.seed },
        signal: stopper.signal,
        onToken: (tok) => {
          tokens.push(tok);
          onToken?.(tok);
          if (stopStrings.length) {
            const text = this.tokenizer.decode(tokens);
            if (stopStrings.some((s) => text.endsWith(s))) stopper.abort();
          }
        },
      });
    } finally {
      this.signal?.removeEventListener('abort', onAbort);
    }
    throwIfAborted(this.signal);
    return tokens;
  }
}
