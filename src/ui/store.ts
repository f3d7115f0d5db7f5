// The lab's zustand store: the current experiment spec (the single source of truth — every UI edit is a
// new spec, validated by parseSpec), results keyed by condition id, sweep / drift results, engine status
// and UI state (selection, targets, notices). Must never talk to the worker (session.ts does) and never
// hold anything a share link must not carry inside the spec.
import { createStore, useStore } from 'zustand';
import { defaultSpec, parseSpec, type ExperimentSpec, type PatchComponent } from '../lab/spec/experiment';
import type { DriftResult, LensResult, PromptView, SweepResult } from '../lab/spec/results';
import type { BackendProbe } from '../worker/backend-probe';
import type { EngineInfo, LayerSweepResult, LoadProblem, LoadProgress } from '../worker/protocol';
import { pruneStates, type ConditionStates } from './results-state';
import { defaultEditTarget, defaultPatchTarget } from './spec-edit';

export type TaskStatus = 'idle' | 'running' | 'done' | 'cancelled' | 'error';
export type SpecOrigin = 'default' | 'link' | 'file' | 'teach' | 'edit';
export type TeachId = 'prefix' | 'perturb' | 'patch' | 'treft' | 'postfix';

export interface Notice {
  id: number;
  kind: 'error' | 'info';
  text: string;
  details?: string[];
}

export interface SweepState {
  component: PatchComponent;
  status: TaskStatus;
  done: number;
  total: number;
  error: string | null;
  results: Partial<Record<PatchComponent, SweepResult>>;
  /** promptKey of the spec the results were computed for */
  key: string | null;
}

/** A model's latest progress, with what the whole load did so far (a download may end on cache reads). */
export type ModelLoad = LoadProgress & {
  /** some file was downloaded (not served from the cache) in this load */
  fetched?: boolean;
  /** the largest byte total seen: the whole download, not the last file read */
  bytes?: number;
};

export interface LabState {
  spec: ExperimentSpec;
  origin: SpecOrigin;
  /** earlier specs, newest last, for undo */
  past: ExperimentSpec[];
  /** the user's spec from before the first Teach lesson of a run of lessons ("Back to my experiment") */
  lessonReturn: ExperimentSpec | null;

  backend: BackendProbe | null;
  /** what the worker actually used for the last run, and why it fell back */
  backendUsed: { used: string; fallbackReason?: string } | null;
  backendError: string | null;
  info: EngineInfo | null;
  loading: LoadProgress | null;
  /** the latest progress of each model (or repo being downloaded) of the load in flight */
  loads: Record<string, ModelLoad>;
  /** Hub access as the worker holds it: whether a token is set (never the token itself) */
  hub: { tokenSet: boolean; remembered: boolean; endpoint: string | null };

  prompt: PromptView | null;
  promptKey: string | null;
  promptStatus: TaskStatus;
  promptError: string | null;
  /** what the user can do about the failed load (confirm a base, choose q4, paste a token, …) */
  promptProblem: LoadProblem | null;

  conditions: ConditionStates;
  run: { status: TaskStatus; error: string | null };
  sweep: SweepState;
  layerSweep: {
    status: TaskStatus;
    result: LayerSweepResult | null;
    error: string | null;
    key: string | null;
  };
  drift: { status: TaskStatus; result: DriftResult | null; error: string | null; key: string | null };
  /** the logit lens per condition (Lab.lens); `key`: the spec it was computed for */
  lens: { status: TaskStatus; result: LensResult | null; error: string | null; key: string | null };

  ui: {
    /** index into the base prompt's tokens */
    selectedToken: number | null;
    /** condition that token edits and perturbation presets change */
    editTarget: string;
    /** condition that the patch controls change */
    patchTarget: string | null;
    /** the card's Patch button was pressed (in one column the controls then open inside that card) */
    patchOpen: boolean;
    autoRun: boolean;
    /** clicks on the token strip toggle the patch's explicit positions instead of opening the editor */
    pickPositions: boolean;
    teach: TeachId | null;
    /** marker words that flag an answer (comma-separated); null = the default (“gamble” on the demo) */
    markers: string | null;
  };
  notices: Notice[];
}

export interface LabActions {
  /** Validates and installs a new spec; returns false (and posts the errors) when it is invalid. */
  setSpec: (next: ExperimentSpec | ((s: ExperimentSpec) => ExperimentSpec), origin?: SpecOrigin) => boolean;
  undo: () => void;
  /** Loads a lesson's spec; the spec from before the first lesson in a row is kept for leaveLesson. */
  startLesson: (id: TeachId, spec: ExperimentSpec) => boolean;
  /** Ends the lesson; `back` restores the spec from before the first lesson, else the lesson's stays. */
  leaveLesson: (back: boolean) => void;
  notify: (kind: Notice['kind'], text: string, details?: string[]) => void;
  dismiss: (id: number) => void;
  setUi: (patch: Partial<LabState['ui']>) => void;
}

export type LabStore = LabState & LabActions;

const MAX_UNDO = 50;
let nextNotice = 1;

function initialState(spec: ExperimentSpec = defaultSpec()): LabState {
  return {
    spec,
    origin: 'default',
    past: [],
    lessonReturn: null,
    backend: null,
    backendUsed: null,
    backendError: null,
    info: null,
    loading: null,
    loads: {},
    hub: { tokenSet: false, remembered: false, endpoint: null },
    prompt: null,
    promptKey: null,
    promptStatus: 'idle',
    promptError: null,
    promptProblem: null,
    conditions: {},
    run: { status: 'idle', error: null },
    sweep: { component: 'kv', status: 'idle', done: 0, total: 0, error: null, results: {}, key: null },
    layerSweep: { status: 'idle', result: null, error: null, key: null },
    drift: { status: 'idle', result: null, error: null, key: null },
    lens: { status: 'idle', result: null, error: null, key: null },
    ui: {
      selectedToken: null,
      editTarget: defaultEditTarget(spec),
      patchTarget: defaultPatchTarget(spec),
      patchOpen: false,
      autoRun: true,
      pickPositions: false,
      teach: null,
      markers: null,
    },
    notices: [],
  };
}

/** Keep UI targets pointing at conditions that exist. */
function fixTargets(ui: LabState['ui'], spec: ExperimentSpec): LabState['ui'] {
  const ids = new Set(spec.conditions.map((c) => c.id));
  const editTarget = ids.has(ui.editTarget) ? ui.editTarget : defaultEditTarget(spec);
  const patchTarget = ui.patchTarget && ids.has(ui.patchTarget) ? ui.patchTarget : defaultPatchTarget(spec);
  return editTarget === ui.editTarget && patchTarget === ui.patchTarget
    ? ui
    : { ...ui, editTarget, patchTarget };
}

export function createLabStore(spec?: ExperimentSpec) {
  return createStore<LabStore>()((set, get) => ({
    ...initialState(spec),
    setSpec(next, origin = 'edit') {
      const cur = get().spec;
      const candidate = typeof next === 'function' ? next(cur) : next;
      if (candidate === cur) return true;
      const parsed = parseSpec(candidate);
      if (!parsed.ok) {
        get().notify(
          'error',
          'That change would make the experiment invalid, so it was not applied.',
          parsed.errors,
        );
        return false;
      }
      const s = get();
      const past = origin === 'edit' ? [...s.past, cur].slice(-MAX_UNDO) : [];
      set({
        spec: parsed.spec,
        origin,
        past,
        // a link, a file or the default replaces the user's experiment: no lesson to go back from
        ...(origin === 'edit' ? {} : { lessonReturn: null }),
        conditions: pruneStates(s.conditions, parsed.spec),
        ui: fixTargets(origin === 'edit' ? s.ui : { ...s.ui, selectedToken: null }, parsed.spec),
      });
      return true;
    },
    undo() {
      const s = get();
      const prev = s.past[s.past.length - 1];
      if (!prev) return;
      set({
        spec: prev,
        past: s.past.slice(0, -1),
        origin: 'edit',
        conditions: pruneStates(s.conditions, prev),
        ui: fixTargets(s.ui, prev),
      });
    },
    startLesson(id, spec) {
      const s = get();
      const back = s.ui.teach ? (s.lessonReturn ?? s.spec) : s.spec;
      // NOTE: 'edit' origin keeps the undo history as well.
      if (!s.setSpec(spec, 'edit')) return false;
      set({ lessonReturn: back });
      get().setUi({ teach: id, selectedToken: null });
      return true;
    },
    leaveLesson(back) {
      const ret = get().lessonReturn;
      if (back && ret) get().setSpec(ret, 'edit');
      set({ lessonReturn: null });
      get().setUi({ teach: null });
    },
    notify(kind, text, details) {
      const n: Notice = { id: nextNotice++, kind, text, details };
      set({ notices: [...get().notices.filter((x) => x.text !== text), n].slice(-5) });
    },
    dismiss(id) {
      set({ notices: get().notices.filter((n) => n.id !== id) });
    },
    setUi(patch) {
      set({ ui: fixTargets({ ...get().ui, ...patch }, get().spec) });
    },
  }));
}

export type LabStoreApi = ReturnType<typeof createLabStore>;

/** The app's one store. */
export const labStore: LabStoreApi = createLabStore();

export function useLab<T>(selector: (s: LabStore) => T): T {
  return useStore(labStore, selector);
}
