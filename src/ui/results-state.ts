// Per-condition result state and the pure transitions the worker's streamed events drive: a run begins,
// tokens stream in, a condition finishes, the run ends. Results are keyed by condition id and tagged
// with the key of the spec they were computed for, so an edited condition shows its old answer as stale.
// Pure functions over plain data; must never talk to the worker or touch the DOM.
import { canonicalJson, type ExperimentSpec } from '../lab/spec/experiment';
import type { ConditionResult, PromptView } from '../lab/spec/results';

export type ConditionStatus = 'idle' | 'queued' | 'streaming' | 'done' | 'error' | 'cancelled';

export interface ConditionState {
  result: ConditionResult | null;
  /** the conditionKey the result belongs to */
  key: string | null;
  status: ConditionStatus;
}

export type ConditionStates = Record<string, ConditionState>;

/**
 * What a condition's result depends on: the condition minus its label, and everything shared (models,
 * runtime, conversation, generation, references, metrics). Renaming a card never makes it stale.
 */
export function conditionKey(spec: ExperimentSpec, id: string): string | null {
  const c = spec.conditions.find((x) => x.id === id);
  if (!c) return null;
  const { label: _label, ...rest } = c;
  return canonicalJson({
    c: rest,
    models: spec.models,
    runtime: spec.runtime,
    conversation: spec.conversation,
    generation: spec.generation,
    references: spec.references ?? null,
    metrics: spec.metrics,
  });
}

/** What the prepared prompt depends on. */
export function promptKey(spec: ExperimentSpec): string {
  return canonicalJson({ models: spec.models, runtime: spec.runtime, conversation: spec.conversation });
}

/** True when a condition's shown result was computed for the condition as it is now. */
export function isCurrent(state: ConditionState | undefined, spec: ExperimentSpec, id: string): boolean {
  return !!state?.result && state.key !== null && state.key === conditionKey(spec, id);
}

/** True when the answer is final for the current spec: the test hook data-done="true". */
export function isDone(state: ConditionState | undefined, spec: ExperimentSpec, id: string): boolean {
  return !!state && state.status === 'done' && !!state.result?.done && isCurrent(state, spec, id);
}

/**
 * A run starts: the conditions in `ids` (default: all) are queued; old results stay (shown as stale);
 * the others keep their state.
 */
export function beginRun(
  states: ConditionStates,
  spec: ExperimentSpec,
  ids?: readonly string[],
): ConditionStates {
  const run = new Set(ids ?? spec.conditions.map((c) => c.id));
  const next: ConditionStates = {};
  for (const c of spec.conditions) {
    const old = states[c.id];
    next[c.id] = run.has(c.id)
      ? { result: old?.result ?? null, key: old?.key ?? null, status: 'queued' }
      : (old ?? { result: null, key: null, status: 'idle' });
  }
  return next;
}

/** Conditions whose shown answer is not final for the spec as it is now: what a run must redo. */
export function staleConditions(states: ConditionStates, spec: ExperimentSpec): string[] {
  return spec.conditions.filter((c) => !isDone(states[c.id], spec, c.id)).map((c) => c.id);
}

function partial(id: string, spec: ExperimentSpec, prompt: PromptView | null): ConditionResult {
  const c = spec.conditions.find((x) => x.id === id);
  return {
    id,
    label: c?.label ?? id,
    model: c?.model ?? '',
    prompt: prompt ?? {
      text: '',
      tokens: [],
      segments: { prefix: [0, 0], query: [0, 0], postfix: [0, 0] },
      templateArgs: {},
    },
    text: '',
    tokenIds: [],
    done: false,
    metrics: {},
    nextToken: [],
  };
}

/** A streamed token: the first one of a run replaces the old (stale) answer. */
export function applyToken(
  states: ConditionStates,
  spec: ExperimentSpec,
  ev: { condition: string; tokenId: number; text: string },
  prompt: PromptView | null,
): ConditionStates {
  const old = states[ev.condition];
  const key = conditionKey(spec, ev.condition);
  const base =
    old && old.status === 'streaming' && old.result
      ? old.result
      : { ...partial(ev.condition, spec, prompt), ...keepView(old) };
  const result: ConditionResult = {
    ...base,
    text: base.text + ev.text,
    tokenIds: [...base.tokenIds, ev.tokenId],
    done: false,
  };
  return { ...states, [ev.condition]: { result, key, status: 'streaming' } };
}

/** Keep the previous prompt view and next-token chart while a new answer streams (less flicker). */
function keepView(old: ConditionState | undefined): Partial<ConditionResult> {
  if (!old?.result) return {};
  return { prompt: old.result.prompt, nextToken: old.result.nextToken };
}

/** A condition finished (or failed: result.error). */
export function applyCondition(
  states: ConditionStates,
  spec: ExperimentSpec,
  result: ConditionResult,
): ConditionStates {
  return {
    ...states,
    [result.id]: {
      result,
      key: conditionKey(spec, result.id),
      status: result.error ? 'error' : result.done ? 'done' : 'streaming',
    },
  };
}

/** The run ended: whatever is still queued or streaming becomes cancelled / error. */
export function endRun(states: ConditionStates, outcome: 'done' | 'cancelled' | 'error'): ConditionStates {
  const next: ConditionStates = {};
  for (const [id, s] of Object.entries(states)) {
    if (s.status === 'queued' || s.status === 'streaming') {
      next[id] = { ...s, status: outcome === 'done' ? (s.result?.done ? 'done' : 'idle') : outcome };
    } else next[id] = s;
  }
  return next;
}

/** Drop states of conditions no longer in the spec. */
export function pruneStates(states: ConditionStates, spec: ExperimentSpec): ConditionStates {
  const ids = new Set(spec.conditions.map((c) => c.id));
  const next: ConditionStates = {};
  for (const [id, s] of Object.entries(states)) if (ids.has(id)) next[id] = s;
  return next;
}
