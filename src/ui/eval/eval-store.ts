// The evaluation panel's zustand store (the lab store's patterns, store.ts): the judge form, samples,
// the evaluation in flight and its results, the selected bar. It lives outside the panel so a run, its
// progress and its results survive the panel closing. Must never talk to the worker (eval-requests.ts
// does) and never hold the API key: the key stays in the panel's memory (sessionStorage only when the
// user ticks "remember"), so it cannot reach the store, a link, a log or an export.
import { createStore, useStore } from 'zustand';
import type { EvalSummary } from '../../lab/eval/eval-table';
import type { CardJudgement } from '../verdicts';
import { DEMO_MARKERS, type JudgeForm } from './eval-view';

/** The judge form without its key. */
export type JudgeChoice = Omit<JudgeForm, 'key'>;

export interface EvalSelection {
  condition: string;
  /** a per-question bar; absent: the condition's bar over all questions */
  question?: string;
}

export interface EvalPanelProgress {
  done: number;
  total: number;
  stage?: string;
}

/**
 * The cards' answers judged by the panel's judge ("Judge these answers"): judgements by answer text, for
 * one judge (`judgeId`, cardJudgeId) and one question; the cards use them while both still hold.
 */
export interface CardJudging {
  judgeId: string | null;
  question: string | null;
  byText: Record<string, CardJudgement>;
  running: boolean;
  progress: { done: number; total: number } | null;
  error: string | null;
  cancel: (() => void) | null;
}

export interface EvalState {
  /** judge '' = not chosen yet: the default follows the spec (a link may replace the demo after mount) */
  form: JudgeChoice;
  /** null until the user sets it: the panel shows the spec's samples when it opens */
  samples: number | null;
  compact: boolean;
  running: boolean;
  /** cancels the evaluation in flight (set while running) */
  cancel: (() => void) | null;
  progress: EvalPanelProgress | null;
  summary: EvalSummary | null;
  error: string | null;
  note: string | null;
  selected: EvalSelection | null;
  cards: CardJudging;
}

export interface EvalActions {
  setForm: (patch: Partial<JudgeChoice>) => void;
  setSamples: (samples: number) => void;
  setCompact: (compact: boolean) => void;
  select: (selected: EvalSelection | null) => void;
}

export type EvalPanelStore = EvalState & EvalActions;

export function initialEvalState(): EvalState {
  return {
    form: { judge: '', markers: DEMO_MARKERS, url: 'https://api.openai.com/v1', model: 'gpt-4o-2024-08-06' },
    samples: null,
    compact: false,
    running: false,
    cancel: null,
    progress: null,
    summary: null,
    error: null,
    note: null,
    selected: null,
    cards: {
      judgeId: null,
      question: null,
      byText: {},
      running: false,
      progress: null,
      error: null,
      cancel: null,
    },
  };
}

/** Who judges the cards, as a key (never the API key): the form's judge, its endpoint and the prompts. */
export function cardJudgeId(form: JudgeChoice, judge: string, compact: boolean): string {
  if (judge === 'api') return `api|${form.url}|${form.model}|${compact ? 'compact' : 'full'}`;
  return `${judge === 'marker' ? `marker|${form.markers}` : `model|${judge}`}|${compact ? 'compact' : 'full'}`;
}

export function createEvalStore() {
  return createStore<EvalPanelStore>()((set, get) => ({
    ...initialEvalState(),
    setForm(patch) {
      set({ form: { ...get().form, ...patch } });
    },
    setSamples(samples) {
      set({ samples });
    },
    setCompact(compact) {
      set({ compact });
    },
    select(selected) {
      set({ selected });
    },
  }));
}

export type EvalStoreApi = ReturnType<typeof createEvalStore>;

/** The app's one evaluation store. */
export const evalStore: EvalStoreApi = createEvalStore();

export function useEval<T>(selector: (s: EvalPanelStore) => T): T {
  return useStore(evalStore, selector);
}
