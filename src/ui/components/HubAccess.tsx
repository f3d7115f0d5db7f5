// Hub access in the models panel: the Hugging Face token for gated repos (a password field; kept in
// the worker's memory, in this tab's sessionStorage only when asked), the Hub endpoint, and clearing
// the download cache. Must never put the token in the spec, the store, a link, a notice or the console.
import { useId, useState } from 'react';
import { errorMessage } from '../../common/errors';
import { formatBytes } from '../../common/format';
import { looksLikeToken, normaliseEndpoint } from '../hub-access';
import { useSession } from '../session-context';
import { useLab } from '../store';

export const TOKEN_INPUT_ID = 'hf-token-input';

export function HubAccess({ open }: { open: boolean }) {
  const session = useSession();
  const hub = useLab((s) => s.hub);
  const notify = useLab((s) => s.notify);
  const promptStatus = useLab((s) => s.promptStatus);
  const problem = useLab((s) => s.promptProblem);
  const [token, setToken] = useState('');
  const [remember, setRemember] = useState(false);
  const [endpoint, setEndpoint] = useState(hub.endpoint ?? '');
  const [busy, setBusy] = useState(false);
  const [cacheNote, setCacheNote] = useState<string | null>(null);
  const uid = useId();

  const run = async (what: string, f: () => Promise<void>) => {
    if (!session) return;
    setBusy(true);
    try {
      await f();
    } catch (e) {
      notify('error', `${what}: ${errorMessage(e)}`);
    } finally {
      setBusy(false);
    }
  };
  const retryIfFailed = async () => {
    if (promptStatus === 'error') await session?.retryLoad();
  };
  const applyToken = () =>
    run('Hub token', async () => {
      await session?.setHubToken(token, remember);
      setToken('');
      await retryIfFailed();
    });
  const forgetToken = () =>
    run('Hub token', async () => {
      await session?.setHubToken(null, false);
      setToken('');
    });
  const applyEndpoint = () =>
    run('Hub endpoint', async () => {
      const ep = normaliseEndpoint(endpoint);
      if (ep instanceof Error) throw ep;
      await session?.setHubEndpoint(ep);
      setEndpoint(ep ?? '');
      await retryIfFailed();
    });
  const clearCache = () =>
    run('Clear cache', async () => {
      const freed = (await session?.clearCache()) ?? 0;
      setCacheNote(
        freed > 0
          ? `Freed ${formatBytes(freed)}. Models already loaded stay in memory until the page reloads.`
          : 'The download cache was already empty.',
      );
    });

  const tokenWarning =
    token.trim() && !looksLikeToken(token) ? 'This does not look like a Hub token (hf_…).' : null;

  return (
    <details className="hub-access" open={open || problem?.kind === 'auth'} data-testid="hub-access">
      <summary className="small">
        Hub access &amp; cache{' '}
        <span className="muted" data-testid="token-state">
          · {hub.tokenSet ? (hub.remembered ? 'token set (kept for this tab)' : 'token set') : 'no token'}
        </span>
      </summary>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          void applyToken();
        }}
      >
        <label className="field">
          <span>Hugging Face token (for gated repos)</span>
          <input
            id={TOKEN_INPUT_ID}
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={token}
            onChange={(e) => setToken(e.target.value)}
            placeholder={hub.tokenSet ? 'a token is set; paste another to replace it' : 'hf_…'}
            aria-describedby={`${uid}-tok`}
          />
        </label>
        <label className="check small">
          <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.target.checked)} />
          <span>Remember for this tab (sessionStorage; gone when the tab closes)</span>
        </label>
        {tokenWarning && <p className="hint small">{tokenWarning}</p>}
        <div className="row wrap">
          <button type="submit" className="btn small" disabled={busy || !token.trim()}>
            Use token
          </button>
          <button type="button" className="btn small" disabled={busy || !hub.tokenSet} onClick={forgetToken}>
            Forget token
          </button>
        </div>
        <p id={`${uid}-tok`} className="muted small">
          Held in the engine&apos;s memory and sent only to the Hub endpoint; never in links, specs, the cache
          or logs. A read token is enough.
        </p>
      </form>
      <form
        className="row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          void applyEndpoint();
        }}
      >
        <label className="field grow">
          <span>Hub endpoint</span>
          <input
            value={endpoint}
            onChange={(e) => setEndpoint(e.target.value)}
            placeholder="https://huggingface.co"
            spellCheck={false}
            aria-label="Hub endpoint"
          />
        </label>
        <button type="submit" className="btn small" disabled={busy || endpoint === (hub.endpoint ?? '')}>
          Set
        </button>
      </form>
      <div className="row wrap">
        <button type="button" className="btn small" disabled={busy} onClick={clearCache}>
          Clear download cache
        </button>
        {cacheNote && (
          <span className="small" role="status" data-testid="cache-note">
            {cacheNote}
          </span>
        )}
      </div>
    </details>
  );
}
