// Entry of the engine self-check page (check.html): asks the worker to compare the engine with the
// reference on every backend and prints the numbers. Runs no model on this thread.
import { errorMessage } from './common/errors';
import { EngineClient } from './worker/client';

const out = document.querySelector<HTMLPreElement>('[data-testid="selfcheck"]');
if (!out) throw new Error('missing output element');
const client = new EngineClient();
client
  .request({ type: 'selfcheck', backends: ['webgpu', 'wasm'] })
  .then((r) => {
    out.textContent = JSON.stringify(r.result, null, 2);
    out.dataset.state = 'done';
  })
  .catch((e: unknown) => {
    out.textContent = `self-check failed: ${errorMessage(e)}`;
    out.dataset.state = 'error';
  });
