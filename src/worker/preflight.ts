// The worker's check before it downloads a spec's weights: for every model that is not the embedded
// demo, read only the configs and the (small) adapters, check each adapter fits its base and each
// model fits the backend in the spec's dtype (worker/adapter-preflight.ts), and stop with a LoadProblemError
// the models panel can act on — an adapter base to confirm, a dtype to choose — before gigabytes move.
// Must never read a base model's weights, and never hold tokens.
import { isHubError } from '../hub/hub-api';
import { planSessions, WEBGPU_DEFAULT_LIMITS, type SessionPlanInput } from '../engine/memory';
import { JUDGE_DTYPE, judgeSharesSession, specSessions } from '../lab/run/models';
import type { FileSource } from '../engine/files';
import type { ExperimentSpec, ModelSource } from '../lab/spec/experiment';
import { preflightSpec, type ModelPreflight, type PreflightOptions } from './adapter-preflight';
import type { BackendProbe } from './backend-probe';
import { LoadProblemError } from './load-problem';

/**
 * Where the spec will run, for the memory check: the probed adapter's limits, or WASM's heap (4 GiB, or
 * `wasmHeapBytes` when the page was asked to assume less).
 */
export function preflightTarget(
  device: ExperimentSpec['runtime']['device'],
  probe: BackendProbe | null,
  wasmHeapBytes?: number,
): NonNullable<PreflightOptions['target']> {
  const gpu = device === 'webgpu' || (device === 'auto' && probe?.kind === 'webgpu');
  if (!gpu)
    return wasmHeapBytes === undefined ? { backend: 'wasm' } : { backend: 'wasm', heapBytes: wasmHeapBytes };
  return {
    backend: 'webgpu',
    shaderF16: probe?.shaderF16 ?? false,
    limits: {
      maxBufferSize: probe?.maxBufferSize ?? WEBGPU_DEFAULT_LIMITS.maxBufferSize,
      maxStorageBufferBindingSize:
        probe?.maxStorageBufferBindingSize ?? WEBGPU_DEFAULT_LIMITS.maxStorageBufferBindingSize,
    },
  };
}

/** The spec's models that need a check: anything not served from the app's own demo folders. */
export function modelsToCheck(spec: ExperimentSpec): ExperimentSpec['models'] {
  const out: ExperimentSpec['models'] = {};
  for (const [id, e] of Object.entries(spec.models)) {
    if (e.source.kind !== 'demo' || (e.adapter && e.adapter.kind !== 'demo')) out[id] = e;
  }
  return out;
}

/** The key of a confirmed adapter → base mapping. */
export const confirmKey = (adapter: string, base: string) => `${adapter}\u0000${base}`;

export interface WorkerPreflightOptions {
  /** opens a source without downloading its weights */
  resolveSource: (s: ModelSource) => Promise<FileSource>;
  target: NonNullable<PreflightOptions['target']>;
  /** mappings the user accepted (confirmKey) */
  confirmed: ReadonlySet<string>;
  contextLength?: number;
}

/**
 * All of the spec's sessions at once (WASM: one 4 GiB heap): each model passed alone, but a base, a full
 * finetune and a model judge (`extra`) add up. Throws a memory LoadProblemError naming the dtype that fits.
 */
function checkSessionsFit(
  spec: ExperimentSpec,
  results: readonly ModelPreflight[],
  opts: WorkerPreflightOptions,
  extra: readonly SessionPlanInput[] = [],
): void {
  const byId = new Map(results.map((r) => [r.id, r]));
  const sessions: SessionPlanInput[] = [];
  for (const s of specSessions(spec)) {
    // NOTE: the embedded demo models are not preflighted (tiny); every other session is counted
    const r = byId.get(s.entryId);
    if (!r?.arch) continue;
    sessions.push({ label: s.ids.join(' + '), spec: r.arch, loraParams: r.loraParams });
  }
  sessions.push(...extra);
  if (sessions.length < 2) return;
  const plan = planSessions(
    sessions,
    { dtype: spec.runtime.dtype, contextLength: opts.contextLength ?? 1024 },
    opts.target,
  );
  if (plan.ok) return;
  const message = plan.message ?? 'the models do not fit in memory together';
  const s = plan.suggestion;
  throw new LoadProblemError(message, {
    kind: 'memory',
    model: sessions.map((x) => x.label).join(', '),
    suggestion: s === 'fp16' || s === 'int8' || s === 'q4' ? s : null,
    message,
  });
}

/**
 * Throws when a model cannot be loaded as the spec asks: the original Hub error (so a 401 keeps its
 * reason), a LoadProblemError for a base to confirm or a dtype that does not fit, else an Error that
 * names the model. Resolves when every model may be downloaded.
 */
export async function preflightOrThrow(spec: ExperimentSpec, opts: WorkerPreflightOptions): Promise<void> {
  const models = modelsToCheck(spec);
  if (Object.keys(models).length === 0) return;
  const results = await preflightSpec(
    { ...spec, models },
    { resolveSource: opts.resolveSource, target: opts.target, contextLength: opts.contextLength ?? 1024 },
  );
  for (const r of results) {
    if (r.failure) {
      if (isHubError(r.failure) || r.failure instanceof LoadProblemError) throw r.failure;
      throw new Error(`${r.id}: ${r.errors.join('; ')}`);
    }
    if (r.memory && !r.memory.ok) {
      const message = `${r.id}: ${r.memory.message ?? 'does not fit in memory'}`;
      const s = r.memory.suggestion;
      throw new LoadProblemError(message, {
        kind: 'memory',
        model: r.id,
        suggestion: s === 'fp16' || s === 'int8' || s === 'q4' ? s : null,
        message,
      });
    }
    if (r.errors.length > 0) throw new Error(`${r.id}: ${r.errors.join('; ')}`);
  }
  checkSessionsFit(spec, results, opts);
  for (const r of results) {
    if (r.confirm && r.adapter && !opts.confirmed.has(confirmKey(r.adapter.source, r.base))) {
      throw new LoadProblemError(`${r.id}: ${r.confirm.message}`, {
        kind: 'confirm-base',
        model: r.id,
        adapter: r.adapter.source,
        base: r.base,
        declared: r.confirm.declared,
        message: r.confirm.message,
      });
    }
  }
}

/**
 * Before a model judge from another source (the Evaluation panel's separate judge) downloads its
 * weights: its config fits the backend alone in fp32, and the spec's sessions and the judge fit
 * together (WASM: one heap). A judge the spec already opens, or the embedded demo, costs nothing here.
 * Throws like preflightOrThrow (a memory problem names the judge; its suggestion is for the spec's
 * dtype, the judge stays fp32).
 */
export async function preflightJudgeOrThrow(
  spec: ExperimentSpec,
  source: ModelSource,
  opts: WorkerPreflightOptions,
): Promise<void> {
  if (source.kind === 'demo' || judgeSharesSession(spec, source)) return;
  const judgeSpec: ExperimentSpec = {
    ...spec,
    models: { judge: { source } },
    runtime: { ...spec.runtime, dtype: JUDGE_DTYPE },
  };
  const [judge] = await preflightSpec(judgeSpec, {
    resolveSource: opts.resolveSource,
    target: opts.target,
    contextLength: opts.contextLength ?? 1024,
  });
  if (judge.failure) {
    if (isHubError(judge.failure)) throw judge.failure;
    throw new Error(`judge: ${judge.errors.join('; ')}`);
  }
  if (judge.memory && !judge.memory.ok)
    throw new Error(`judge: ${judge.memory.message ?? 'does not fit in memory'}`);
  if (!judge.arch) return;
  const models = modelsToCheck(spec);
  const results = Object.keys(models).length
    ? await preflightSpec(
        { ...spec, models },
        { resolveSource: opts.resolveSource, contextLength: opts.contextLength ?? 1024 },
      )
    : [];
  checkSessionsFit(spec, results, opts, [{ label: 'judge', spec: judge.arch, dtype: JUDGE_DTYPE }]);
}
