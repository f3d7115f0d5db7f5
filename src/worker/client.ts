// UI-side handle on the engine worker: request/response with ids, streamed events per request,
// cancellation. Must never import the engine itself (that would pull ORT into the UI thread).
import { CancelledError } from '../common/abort';
import type { LoadProblem, WorkerEvent, WorkerMessage, WorkerRequest, WorkerResponse } from './protocol';

type Pending = {
  resolve: (r: WorkerResponse) => void;
  reject: (e: Error) => void;
  onEvent?: (e: WorkerEvent) => void;
};
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type RequestBody = DistributiveOmit<WorkerRequest, 'id'>;

const eventTypes = new Set<WorkerMessage['type']>([
  'progress',
  'backend',
  'prompt',
  'token',
  'condition',
  'sweep',
  'eval-progress',
]);

/** The worker's error answer; `problem` says what the user can do about a failed load. */
export class WorkerError extends Error {
  readonly problem: LoadProblem | null;
  constructor(message: string, problem?: LoadProblem) {
    super(message);
    this.name = 'WorkerError';
    this.problem = problem ?? null;
  }
}

export class EngineClient {
  private worker: Worker;
  private nextId = 1;
  private pending = new Map<number, Pending>();

  constructor() {
    this.worker = new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module' });
    this.worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
      const msg = e.data;
      const p = this.pending.get(msg.id);
      if (!p) return;
      if (eventTypes.has(msg.type)) {
        p.onEvent?.(msg as WorkerEvent);
        return;
      }
      this.pending.delete(msg.id);
      if (msg.type === 'error') p.reject(new WorkerError(msg.message, msg.problem));
      else if (msg.type === 'cancelled') p.reject(new CancelledError());
      else p.resolve(msg as WorkerResponse);
    };
    this.worker.onerror = (e) => {
      const err = new Error(`engine worker failed: ${e.message}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }

  /** Sends a request; returns its id (for cancel) and the promise of its final response. */
  start<T extends WorkerResponse['type']>(
    req: RequestBody,
    onEvent?: (e: WorkerEvent) => void,
  ): { id: number; done: Promise<Extract<WorkerResponse, { type: T }>> } {
    const id = this.nextId++;
    const done = new Promise<Extract<WorkerResponse, { type: T }>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: WorkerResponse) => void, reject, onEvent });
      this.worker.postMessage({ ...req, id } as WorkerRequest);
    });
    return { id, done };
  }

  request<T extends WorkerResponse['type']>(
    req: RequestBody,
    onEvent?: (e: WorkerEvent) => void,
  ): Promise<Extract<WorkerResponse, { type: T }>> {
    return this.start<T>(req, onEvent).done;
  }

  cancel(target: number): void {
    this.worker.postMessage({ id: this.nextId++, type: 'cancel', target } satisfies WorkerRequest);
  }

  dispose(): void {
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new CancelledError());
    this.pending.clear();
  }
}
