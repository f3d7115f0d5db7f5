// The mechanism views on top of a RunContext: attention mass from the answer positions onto the
// prompt's segments per layer and head for every condition (from the engine's attention taps), and the
// per-head K/V patching sweep (one KV head at one layer per batch row, through the sweep planner).
// Like lab.ts it never touches the DOM or ORT, and every tensor it makes stays inside the call.
import { CancelledError } from '../../common/abort';
import { generate } from '../../engine/generate';
import type { PatchSet } from '../../engine/types';
import { setHeadPatchCell } from '../interventions/patch';
import {
  applyEdits,
  bestAndAvg,
  randomPerturbations,
  segmentsOf,
  type SegmentedPrompt,
} from '../interventions/perturb';
import { planSweep, runSweep } from '../interventions/sweep';
import { attentionMass, prefixColumn } from '../metrics/attention';
import { klFromLogits, logitsAt, normalizedRestoration } from '../metrics/metrics';
import type { Condition } from '../spec/experiment';
import {
  ATTENTION_REGIONS,
  type AttentionCondition,
  type AttentionResult,
  type SweepResult,
} from '../spec/results';
import { baseModelId, dimsOf, finetunedModelId, type RunContext } from './lab';
import type { ModelHandle } from './models';

export interface AttentionOptions {
  /** default spec.attention.answerTokens, else 1 */
  answerTokens?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

/** The prompt a condition runs: its edits, or its random trial with the best first-token restoration. */
async function conditionPrompt(ctx: RunContext, cond: Condition): Promise<SegmentedPrompt> {
  const pert = cond.perturbation;
  let p: SegmentedPrompt = ctx.prompt;
  if (pert?.kind === 'edits') p = applyEdits(ctx.prompt, pert.edits, ctx.codec());
  else if (pert?.kind === 'random') {
    const h = ctx.handle(cond.model);
    const trials = randomPerturbations(ctx.prompt, pert, await h.model.embedding(), {
      codec: ctx.codec(),
      allowed: (id) => id < ctx.tokenizer.vocabSize,
    });
    const base = await ctx.baseDistribution();
    const klFt = klFromLogits(base, await ctx.finetunedDistribution());
    const scores: (number | null)[] = [];
    for (const t of trials) {
      const ids = t.prompt.tokens.map((x) => x.id);
      const { patches } = await ctx.patchFor(cond, t.prompt, ids.length);
      const logits = await ctx.lastLogits(h, ids, patches, cond.loraScale ?? h.loraScale);
      scores.push(normalizedRestoration(klFromLogits(base, logits), klFt, 0));
    }
    p = trials[bestAndAvg(scores, true).bestTrial ?? 0].prompt;
  }
  return { ...p, segments: segmentsOf(p.tokens) };
}

/**
 * One model's attention mass on a prompt: the first `answerTokens − 1` answer tokens generated under
 * the spec's settings (with the patch), then prompt + answer teacher-forced with every layer's
 * attention tapped; rows = the prompt's last position and the answer positions before the last.
 */
async function massOf(
  ctx: RunContext,
  h: ModelHandle,
  p: SegmentedPrompt,
  patchesFor: (seqLen: number) => Promise<PatchSet | undefined>,
  loraScale: number,
  answerTokens: number,
): Promise<{ mass: Float64Array; positions: number[]; answer: number[] }> {
  const ids = p.tokens.map((t) => t.id);
  let answer: number[] = [];
  if (answerTokens > 1) {
    const g = ctx.spec.generation;
    const out = await generate(h.model.engine, {
      inputIds: [ids],
      patches: await patchesFor(ids.length),
      loraScale: [loraScale],
      maxNewTokens: answerTokens - 1,
      stopTokens: [...new Set(h.model.arch.eosTokenIds)],
      sampling: { temperature: g.temperature, topK: g.topK, topP: g.topP, seed: g.seed },
      signal: ctx.signal,
    });
    answer = out.rows[0].tokens;
  }
  throwIfAborted(ctx.signal);
  const full = [...ids, ...answer];
  const L = h.model.arch.numLayers;
  const nH = h.model.arch.numHeads;
  const out = await h.model.engine.evaluate({
    inputIds: [full],
    loraScale: [loraScale],
    patches: await patchesFor(full.length),
    taps: { attn: Array.from({ length: L }, (_, l) => l), logits: 'last' },
  });
  const positions = Array.from({ length: answer.length + 1 }, (_, i) => ids.length - 1 + i);
  const R = ATTENTION_REGIONS.length;
  const mass = new Float64Array(L * nH * R);
  for (let l = 0; l < L; l++) mass.set(attentionMass(out.attn.get(l)!, positions, p.segments), l * nH * R);
  return { mass, positions, answer };
}

/** Attention mass per condition, and the plain finetuned − base prefix mass per (layer, head). */
export async function runAttention(ctx: RunContext, opts: AttentionOptions = {}): Promise<AttentionResult> {
  const spec = ctx.spec;
  const answerTokens = opts.answerTokens ?? spec.attention?.answerTokens ?? 1;
  if (!Number.isInteger(answerTokens) || answerTokens < 1 || answerTokens > 64)
    throw new RangeError(`answerTokens must be an integer in 1..64, got ${answerTokens}`);
  const ft = ctx.handle(finetunedModelId(spec));
  const base = ctx.handle(baseModelId(spec));
  const arch = ft.model.arch;
  const L = arch.numLayers;
  const nH = arch.numHeads;
  const total = spec.conditions.length + 2;
  let done = 0;
  const step = () => opts.onProgress?.(++done, total);

  const plain = async (h: ModelHandle) =>
    (await massOf(ctx, h, ctx.prompt, async () => undefined, h.loraScale, answerTokens)).mass;
  const baseMass = await plain(base);
  step();
  const ftMass = await plain(ft);
  step();
  const basePrefix = prefixColumn(baseMass, L, nH);
  const ftPrefix = prefixColumn(ftMass, L, nH);

  const conditions: AttentionCondition[] = [];
  for (const cond of spec.conditions) {
    throwIfAborted(opts.signal);
    const entry = { id: cond.id, label: cond.label, model: cond.model };
    try {
      const h = ctx.handle(cond.model);
      if (h.model.arch.numLayers !== L || h.model.arch.numHeads !== nH)
        throw new Error(`model "${cond.model}" has another shape than the finetuned model`);
      const p = await conditionPrompt(ctx, cond);
      const r = await massOf(
        ctx,
        h,
        p,
        async (seqLen) => (await ctx.patchFor(cond, p, seqLen)).patches,
        cond.loraScale ?? h.loraScale,
        answerTokens,
      );
      conditions.push({
        ...entry,
        mass: Array.from(r.mass),
        answerPositions: r.positions,
        answerText: ctx.tokenizer.decode(r.answer),
      });
    } catch (e) {
      if (opts.signal?.aborted) throw new CancelledError();
      conditions.push({
        ...entry,
        mass: [],
        answerPositions: [],
        answerText: '',
        error: e instanceof Error ? e.message : String(e),
      });
    }
    step();
  }
  return {
    layers: Array.from({ length: L }, (_, l) => l),
    heads: nH,
    kvHeads: arch.numKvHeads,
    regions: [...ATTENTION_REGIONS],
    answerTokens,
    conditions,
    prefixDiff: ftPrefix.map((v, i) => v - basePrefix[i]),
    basePrefixMass: basePrefix,
    finetunedPrefixMass: ftPrefix,
  };
}

export interface HeadSweepOptions {
  /** positions every cell patches; default the prefix */
  positions?: number[];
  /** rows per forward call */
  batchSize?: number;
  onProgress?: (partial: SweepResult, done: number, total: number) => void;
  signal?: AbortSignal;
}

const HEAD_METRIC = 'restoration of KL(base ‖ patched) at the first answer token';

/**
 * Layer × KV-head grid: each cell patches one KV head's K/V at one layer, at every position of the
 * prefix (or `positions`), from the base model into the finetuned one; the other heads of that layer
 * keep the finetuned model's own K/V (`setHeadPatchCell`). Batched, with progress and cancellation.
 */
export async function runHeadSweep(ctx: RunContext, opts: HeadSweepOptions = {}): Promise<SweepResult> {
  const spec = ctx.spec;
  const ft = ctx.handle(finetunedModelId(spec));
  const base = ctx.handle(baseModelId(spec));
  const ids = ctx.promptIds();
  const T = ids.length;
  const dims = dimsOf(ft);
  const [ps, pe] = ctx.prompt.segments.prefix;
  const patched = opts.positions ?? Array.from({ length: pe - ps }, (_, i) => ps + i);
  if (patched.length === 0) throw new Error('the prompt has no prefix positions to patch');
  for (const p of patched)
    if (!Number.isInteger(p) || p < 0 || p >= T) throw new RangeError(`position ${p} ∉ 0..${T - 1}`);
  const layers = Array.from({ length: dims.numLayers }, (_, l) => l);
  const heads = Array.from({ length: dims.kvHeads }, (_, h) => h);
  const source = await ctx.activations(base, ids, 'kv');
  const own = await ctx.activations(ft, ids, 'kv');
  const baseLogits = await ctx.baseDistribution();
  const klFt = klFromLogits(baseLogits, await ctx.finetunedDistribution());
  // the sweep planner's "positions" axis carries the KV heads here
  const plan = planSweep({
    component: 'kv',
    layers,
    positions: heads,
    maxBatchSize: opts.batchSize ?? 16,
    metric: HEAD_METRIC,
  });
  const toResult = (values: Float64Array, complete: boolean): SweepResult => ({
    component: 'kv',
    metric: plan.metric,
    layers,
    positions: heads,
    positionLabels: heads.map((h) => `h${h}`),
    values: Array.from(values),
    done: complete,
    axis: 'head',
    patchedPositions: [...patched],
  });
  const grid = await runSweep(
    plan,
    async (cells) => {
      const B = cells.length;
      const patches: PatchSet = {};
      cells.forEach((c, row) => {
        for (const position of patched)
          setHeadPatchCell(patches, { site: c.site, position, row, heads: [c.position] }, source, own, dims, {
            batchSize: B,
            seqLen: T,
          });
      });
      const out = await ctx.forwardRows(
        ft,
        cells.map(() => ids),
        patches,
      );
      return cells.map((_, b) =>
        normalizedRestoration(klFromLogits(baseLogits, logitsAt(out, b, 0)), klFt, 0),
      );
    },
    {
      signal: opts.signal,
      onProgress: (p) => opts.onProgress?.(toResult(p.result.values, p.done === p.total), p.done, p.total),
    },
  );
  return toResult(grid.values, true);
}
