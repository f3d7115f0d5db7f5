// Entry of the engine self-check page (check.html): asks the worker to compare the engine with the
// reference on every backend, prints a pass / fail verdict and the numbers. Runs no model on this thread.
import { errorMessage } from './common/errors';
import { EngineClient } from './worker/client';
import { selfCheckVerdict } from './worker/selfcheck-verdict';

const out = document.querySelector<HTMLPreElement>('[data-testid="selfcheck"]');
const verdict = document.querySelector<HTMLParagraphElement>('[data-testid="selfcheck-verdict"]');
if (!out || !verdict) throw new Error('missing output element');
const client = new EngineClient();
client
  .request({ type: 'selfcheck', backends: ['webgpu', 'wasm'] })
  .then((r) => {
    const v = selfCheckVerdict(r.result);
    verdict.textContent = v.text;
    verdict.dataset.verdict = v.pass ? 'pass' : 'fail';
    verdict.style.color = v.pass ? '#1d6b2a' : '#a32020';
    out.textContent = JSON.stringify(r.result, null, 2);
    out.dataset.state = 'done';
  })
  .catch((e: unknown) => {
    verdict.textContent = 'FAIL: the self-check could not run.';
    verdict.dataset.verdict = 'fail';
    out.textContent = `self-check failed: ${errorMessage(e)}`;
    out.dataset.state = 'error';
  });
