// The lab's root component: header with the backend badge and the main panels.
// Must never run a model on this thread; everything model-related goes through the worker client.
import { useEffect, useState } from 'react';
import { EngineClient } from '../worker/client';
import type { BackendProbe } from '../worker/backend-probe';

export function App() {
  const [backend, setBackend] = useState<BackendProbe | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const client = new EngineClient();
    client
      .request<'probe'>({ type: 'probe' })
      .then((r) => setBackend(r.backend))
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
    return () => client.dispose();
  }, []);

  return (
    <div className="app">
      <header className="app-header">
        <h1>Piggyback Lab</h1>
        <p className="tagline">
          Does the chat-template prefix carry a finetune&apos;s misbehaviour? Perturb it, patch it, see.
        </p>
        <span className="backend" data-testid="backend" data-kind={backend?.kind ?? 'pending'}>
          {backend
            ? backend.kind === 'webgpu'
              ? `WebGPU · ${backend.adapter}`
              : `WASM · ${backend.reason}`
            : 'detecting backend…'}
        </span>
      </header>
      {error && (
        <div role="alert" className="error">
          {error}
        </div>
      )}
    </div>
  );
}
