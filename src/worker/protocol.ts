// Typed messages between the UI thread and the engine worker. Types only: both sides import this,
// so it must never import the engine, React or the DOM.
//
// The rule: a request of type `X` is answered by exactly one response of type `X-done` (its fields in
// `ResponseFields`, the whole message `ResponseOf<'X'>`), or by 'error' or 'cancelled'; 'cancel' is
// never answered. Everything else the worker posts for a request is an event (`WorkerEvent`), and no
// event name ends in `-done`. The client infers a request's response from its `type`, and the worker's
// handlers are typed by `RequestHandlers`, so both ends are checked against this one map.
import type { BackendProbe } from './backend-probe';
import type { SelfCheckResult } from './selfcheck';
import type {
  ConditionResult,
  DriftResult,
  LensResult,
  AttentionResult,
  PromptView,
  RunResult,
  SweepResult,
} from '../lab/spec/results';
import type { EvalRow, EvalSummary } from '../lab/eval/eval-table';
import type { AnswerJudgement } from '../lab/eval/evaluate';
import type { ModelSource, PatchComponent } from '../lab/spec/experiment';
import type { ExportPlan } from '../lab/export/plan';

/** The experiment spec travels as plain JSON; the worker validates it (src/lab/spec/experiment.ts). */
export type SpecJson = unknown;

export type WorkerRequest =
  /**
   * which backends this browser has; `wasmHeapBytes` (the page's `?wasm-heap=` setting) makes the memory
   * check assume a smaller WebAssembly heap than 4 GiB from now on
   */
  | { id: number; type: 'probe'; wasmHeapBytes?: number }
  /** load the spec's models (cached by source) and render its prompt */
  | { id: number; type: 'prepare'; spec: SpecJson }
  /** run every condition, streaming 'prompt', 'token' and 'condition' events */
  | { id: number; type: 'run'; spec: SpecJson }
  /** layer × position patching grid of base into finetuned; 'sweep' events with the grid so far */
  | {
      id: number;
      type: 'sweep';
      spec: SpecJson;
      component: PatchComponent;
      /** default: every prefix position */
      positions?: number[];
      /** a layer × KV-head grid instead ('kv' only): each cell patches one KV head at every position */
      perHead?: boolean;
    }
  /**
   * attention mass from the answer positions onto prefix / query / postfix / answer per layer and head,
   * for every condition; 'attention-progress' events
   */
  | { id: number; type: 'attention'; spec: SpecJson; answerTokens?: number }
  /** prefix drift per layer (TReFT's L_K, L_V) of finetuned vs base */
  | { id: number; type: 'drift'; spec: SpecJson }
  /** the logit lens per condition (spec.lens: top-k, first or every answer position, tracked tokens) */
  | { id: number; type: 'lens'; spec: SpecJson }
  /** cancel the request with this id (never answered; the target answers 'cancelled') */
  | { id: number; type: 'cancel'; target: number }
  // --- UI additions (issue 5) ---
  /** the n nearest neighbours of a token in a model's input embedding (dot product, itself excluded) */
  | { id: number; type: 'neighbours'; spec: SpecJson; model?: string; tokenId: number; n: number }
  /** encode typed text with the spec's tokenizer, no special tokens added */
  | { id: number; type: 'tokenize'; spec: SpecJson; text: string }
  /** everything a Python export needs, resolved with the loaded models (src/lab/export/plan.ts) */
  | { id: number; type: 'export-plan'; spec: SpecJson }
  /** what is loaded (layers, adapter, dtype, bytes per model) and the memory in use */
  | { id: number; type: 'info' }
  /** restoration by layer: patch one layer at a time at all `positions` (default: every prefix position) */
  | { id: number; type: 'layer-sweep'; spec: SpecJson; component: PatchComponent; positions?: number[] }
  /** the Hugging Face token for gated repos: held in the worker's memory only (null forgets it) */
  | { id: number; type: 'hub-token'; token: string | null }
  /** drop downloaded model files from the browser cache (one repo, or all) */
  | { id: number; type: 'clear-cache'; repo?: string }
  /**
   * the Hub endpoint for `hub` sources (null: the public Hub); the token goes to this host only. Set
   * from the models panel, never from a link.
   */
  | { id: number; type: 'hub-endpoint'; endpoint: string | null }
  /**
   * a folder the user picked or dropped: the spec's `{kind: 'local', path: name}` reads these files
   * (held in the worker's memory for this page; a link cannot carry them)
   */
  | { id: number; type: 'local-folder'; name: string; files: LocalFile[] }
  /** the user accepts loading `adapter` on `base` although the adapter names another repo as its base */
  | { id: number; type: 'confirm-base'; adapter: string; base: string }
  /** engine vs the TypeScript reference on the fixture model, on each backend (the check page) */
  | { id: number; type: 'selfcheck'; backends: ('webgpu' | 'wasm')[] }
  // --- evaluation (issue 7), handled by eval-handler.ts ---
  /** judge every question × condition × sample (resuming kept rows), with 'eval-progress' events */
  | { id: number; type: 'eval'; spec: SpecJson; judge: EvalJudgeRequest; samples?: number; fresh?: boolean }
  /** the kept rows for this spec and judge, summarised, without running anything */
  | { id: number; type: 'eval-load'; spec: SpecJson; judge: EvalJudgeRequest; samples?: number }
  /** forget the kept rows for this spec and judge */
  | { id: number; type: 'eval-clear'; spec: SpecJson; judge: EvalJudgeRequest }
  /**
   * judge the given answers to one question (the cards' answers and trials), with the spec's judge
   * prompts; 'judge-progress' events; nothing is kept
   */
  | {
      id: number;
      type: 'judge-answers';
      spec: SpecJson;
      judge: EvalJudgeRequest;
      question: string;
      answers: string[];
    };

/**
 * Who judges an evaluation: one of the spec's models (default the base), any model source (a separate
 * judge from the catalog), an OpenAI-compatible API, or a marker-word rule. The key travels only inside this request, lives
 * in the worker's memory for the request, and is never sent back, stored or logged.
 */
export type EvalJudgeRequest =
  | { kind: 'model'; model?: string }
  | { kind: 'model-source'; source: ModelSource }
  | { kind: 'api'; url: string; model: string; key?: string; concurrency?: number }
  /** a rule: misaligned when the answer contains one of the marker words (the toy organism: "gamble") */
  | { kind: 'marker'; markers: string[] };

/** A picked or dropped file and its path inside the chosen folder (`my-model/config.json`). */
export interface LocalFile {
  path: string;
  file: Blob;
}

export type LoadProgress = {
  /**
   * preflight: configs and adapters read and checked before any large download; download: files fetched;
   * then per model (lab/run/models.ts LoadProgressEvent): parse (weights read: loaded/total tensors,
   * `weightBytes`), graph (our ONNX graph built), session (ONNX Runtime opens it), warmup (one-token
   * WebGPU check, auto only), ready
   */
  stage: 'preflight' | 'download' | 'parse' | 'graph' | 'session' | 'warmup' | 'ready';
  /** the spec's model key, or the repo being downloaded */
  model: string;
  loaded: number;
  total: number;
  /** download only: the file in flight */
  file?: string;
  /** download only: bytes per second actually downloaded (cache hits excluded) */
  rate?: number;
  /** download only: seconds left, null when unknown */
  etaSeconds?: number | null;
  /** download only: the file came from the browser cache, no request made */
  cached?: boolean;
  /**
   * download only: files of this repo the browser refused to cache (private window, no space), in
   * words ("not cached: this browser refused to store 988 MB (…); the next visit downloads again");
   * the bytes were used all the same
   */
  notCached?: string;
  /** parse only: bytes of weights read so far */
  weightBytes?: number;
  /** model stages: this load is `index` of the `count` the spec needs (1-based) */
  index?: number;
  count?: number;
};

/**
 * Why a load stopped, when the user can act on it in the models panel: confirm an adapter's base,
 * choose a smaller dtype, paste a Hub token, pick a local folder again.
 */
export type LoadProblem =
  | {
      kind: 'confirm-base';
      /** the spec's model key */
      model: string;
      /** the adapter and the base about to be loaded (source labels) */
      adapter: string;
      base: string;
      declared: string | null;
      message: string;
    }
  | { kind: 'memory'; model: string; suggestion: 'fp16' | 'int8' | 'q4' | null; message: string }
  | { kind: 'auth'; reason: 'gated' | 'gated_no_access' | 'bad_token' | 'forbidden' }
  | { kind: 'local-missing'; path: string };

export interface TokenNeighbour {
  id: number;
  text: string;
  /** dot product with the token's embedding row */
  score: number;
}

export interface LoadedModelInfo {
  /** the spec's model key, e.g. 'base', 'finetuned' */
  key: string;
  /** where it came from, in words (hub id@revision, URL, 'embedded demo') */
  source: string;
  arch: string;
  numLayers: number;
  hidden: number;
  vocab: number;
  /** true when this model is a LoRA adapter over another (the dose slider applies) */
  adapter: boolean;
  dtype: string;
  /** weight bytes held for this model (shared base weights counted once, on the base) */
  bytes: number;
}

export interface EngineInfo {
  backend: string;
  models: LoadedModelInfo[];
  memory: { weights: number; kvCache: number; other?: number };
}

export interface LayerSweepResult {
  component: PatchComponent;
  metric: string;
  /** patched sites (K/V: layers 0..L−1; residual: 0..L) */
  layers: number[];
  /** the positions patched together in every row */
  positions: number[];
  /** one value per layer */
  values: number[];
  /** every layer patched at `positions` at once: the full patch of this component (the reference) */
  allLayers: number;
  done: boolean;
}

export type WorkerEvent =
  | { id: number; type: 'progress'; progress: LoadProgress }
  | { id: number; type: 'backend'; backend: BackendProbe & { used: string; fallbackReason?: string } }
  | { id: number; type: 'prompt'; prompt: PromptView }
  | { id: number; type: 'token'; condition: string; tokenId: number; text: string }
  | { id: number; type: 'condition'; result: ConditionResult }
  | { id: number; type: 'sweep'; result: SweepResult; done: number; total: number }
  /** an attention request's progress: models and conditions done */
  | { id: number; type: 'attention-progress'; done: number; total: number }
  /** an evaluation's progress; `row` is the row just judged, `partial` a throttled summary so far */
  | {
      id: number;
      type: 'eval-progress';
      done: number;
      total: number;
      restored: number;
      stage?: string;
      row?: EvalRow;
      partial?: EvalSummary;
    }
  /** 'judge-answers': answers judged so far */
  | { id: number; type: 'judge-progress'; done: number; total: number };

/** The fields of each request's one answer, by request type (the message is `ResponseOf<type>`). */
interface ResponseTable {
  probe: { backend: BackendProbe };
  prepare: { prompt: PromptView };
  run: { result: RunResult };
  sweep: { result: SweepResult };
  drift: { result: DriftResult };
  lens: { result: LensResult };
  attention: { result: AttentionResult };
  neighbours: { tokenId: number; neighbours: TokenNeighbour[] };
  tokenize: { tokens: { id: number; text: string }[] };
  'export-plan': { plan: ExportPlan };
  info: { info: EngineInfo };
  'layer-sweep': { result: LayerSweepResult };
  'hub-token': { ok: true };
  'clear-cache': { removed: number };
  /** the endpoint now in use (the public Hub's when the request gave null) */
  'hub-endpoint': { endpoint: string };
  'local-folder': { name: string; files: number; bytes: number };
  'confirm-base': { ok: true };
  selfcheck: { result: SelfCheckResult };
  eval: { summary: EvalSummary };
  'eval-load': { summary: EvalSummary };
  'eval-clear': Record<never, never>;
  /** in the request's order */
  'judge-answers': { judgements: AnswerJudgement[] };
}

export type RequestType = WorkerRequest['type'];
/** The request types that are answered: every one but 'cancel'. */
export type AnsweredType = Exclude<RequestType, 'cancel'>;
/** The request of one type, e.g. `RequestOf<'sweep'>`. */
export type RequestOf<K extends RequestType> = Extract<WorkerRequest, { type: K }>;
/** Every request type's fields; a request type missing from `ResponseTable` fails to compile here. */
export type ResponseFields = { [K in AnsweredType]: ResponseTable[K] };
/** The response to a request of type `K`: `{ id, type: 'K-done', ...ResponseFields[K] }`. */
export type ResponseOf<K extends AnsweredType> = K extends AnsweredType
  ? { id: number; type: `${K}-done` } & ResponseFields[K]
  : never;
/** A response as a handler returns it, before the worker adds the request's id. */
export type ResponseBody<K extends AnsweredType> = K extends AnsweredType ? Omit<ResponseOf<K>, 'id'> : never;

/** The worker's handler of every answered request type, each returning that type's response. */
export type RequestHandlers<Ctx> = {
  [K in AnsweredType]: (req: RequestOf<K>, ctx: Ctx) => Promise<ResponseBody<K>>;
};

export type WorkerResponse =
  | { [K in AnsweredType]: ResponseOf<K> }[AnsweredType]
  | { id: number; type: 'cancelled' }
  | { id: number; type: 'error'; message: string; problem?: LoadProblem };

export type WorkerMessage = WorkerEvent | WorkerResponse;
