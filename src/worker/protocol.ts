// Typed messages between the UI thread and the engine worker. Types only: both sides import this,
// so it must never import the engine, React or the DOM.
import type { BackendProbe } from './backend-probe';

export type WorkerRequest = { id: number; type: 'probe' };

export type WorkerResponse =
  { id: number; type: 'probe'; backend: BackendProbe } | { id: number; type: 'error'; message: string };
