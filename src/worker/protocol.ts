// Typed messages between the UI thread and the engine worker. Types only: both sides import this,
// so it must never import the engine, React or the DOM.
import type { BackendProbe } from './backend-probe';
import type { ConditionResult, DriftResult, PromptView, RunResult, SweepResult } from '../lab/results';

/** The experiment spec travels as plain JSON; the worker validates it (src/lab/experiment.ts). */
export type SpecJson = unknown;

export type WorkerRequest =
  | { id: number; type: 'probe' }
  /** load the spec's models (cached by source) and render its prompt; answers 'prompt' */
  | { id: number; type: 'prepare'; spec: SpecJson }
  /** run every condition, streaming 'token' and 'condition' events, then 'run-done' */
  | { id: number; type: 'run'; spec: SpecJson }
  /** layer × position patching grid of base into finetuned; 'sweep' events, then 'sweep-done' */
  | {
      id: number;
      type: 'sweep';
      spec: SpecJson;
      component: 'kv' | 'resid';
      /** default: every prefix position */
      positions?: number[];
    }
  /** prefix drift per layer (TReFT's L_K, L_V) of finetuned vs base */
  | { id: number; type: 'drift'; spec: SpecJson }
  /** cancel the request with this id */
  | { id: number; type: 'cancel'; target: number };

export type LoadProgress = {
  stage: 'download' | 'parse' | 'build' | 'session';
  model: string;
  loaded: number;
  total: number;
};

export type WorkerEvent =
  | { id: number; type: 'progress'; progress: LoadProgress }
  | { id: number; type: 'backend'; backend: BackendProbe & { used: string; fallbackReason?: string } }
  | { id: number; type: 'prompt'; prompt: PromptView }
  | { id: number; type: 'token'; condition: string; tokenId: number; text: string }
  | { id: number; type: 'condition'; result: ConditionResult }
  | { id: number; type: 'sweep'; result: SweepResult; done: number; total: number };

export type WorkerResponse =
  | { id: number; type: 'probe'; backend: BackendProbe }
  | { id: number; type: 'prompt-done'; prompt: PromptView }
  | { id: number; type: 'run-done'; result: RunResult }
  | { id: number; type: 'sweep-done'; result: SweepResult }
  | { id: number; type: 'drift-done'; result: DriftResult }
  | { id: number; type: 'cancelled' }
  | { id: number; type: 'error'; message: string };

export type WorkerMessage = WorkerEvent | WorkerResponse;
