// The engine's home in the browser: a Web Worker answering typed requests from the UI.
// The UI thread never runs a model; this file must never touch the DOM.
/// <reference lib="webworker" />
import { probeBackend } from './backend-probe';
import type { WorkerRequest, WorkerResponse } from './protocol';

const post = (msg: WorkerResponse) => (self as unknown as DedicatedWorkerGlobalScope).postMessage(msg);

self.onmessage = async (event: MessageEvent<WorkerRequest>) => {
  const req = event.data;
  try {
    switch (req.type) {
      case 'probe':
        post({ id: req.id, type: 'probe', backend: await probeBackend() });
        break;
    }
  } catch (e) {
    post({ id: req.id, type: 'error', message: e instanceof Error ? e.message : String(e) });
  }
};
