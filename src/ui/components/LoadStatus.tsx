// How the models' load goes: per model (or repo being downloaded) the stage, the file in flight, bytes
// loaded of total, rate and time left, or "from cache"; and when a load fails, the engine's message
// with what the user can do right here — confirm an adapter's base, switch to 4-bit, paste a token,
// pick a local folder again, retry. Must never show a token.
import type { ExperimentSpec, ModelSource } from '../../lab/spec/experiment';
import type { LoadProgress } from '../../worker/protocol';
import { formatBytes } from '../../common/format';
import { describeStage } from '../load-steps';
import { useSession } from '../session-context';
import { useLab } from '../store';
import { TOKEN_INPUT_ID } from './HubAccess';

/** One progress line in words. */
export function describeProgress(p: LoadProgress): string {
  return describeStage(p);
}

const isRepo = (s: string) => /^[\w.-]+\/[\w.-]+$/.test(s);

/** The spec with every Hub source labelled `from` (repo or repo@revision) replaced by the repo `to`. */
export function withBase(spec: ExperimentSpec, from: string, to: string): ExperimentSpec {
  const swap = (src: ModelSource): ModelSource =>
    src.kind === 'hub' &&
    (src.revision && src.revision !== 'main' ? `${src.repo}@${src.revision}` : src.repo) === from
      ? { kind: 'hub', repo: to }
      : src;
  const models: ExperimentSpec['models'] = {};
  for (const [k, e] of Object.entries(spec.models)) models[k] = { ...e, source: swap(e.source) };
  return { ...spec, models };
}

/** The browser would not cache a download: the bytes were used, the next visit downloads again. */
function NotCached({ text }: { text: string }) {
  return (
    <span className="not-cached" data-testid="not-cached">
      {' '}
      · {text}
    </span>
  );
}

export function LoadStatus({
  onPickFolder,
  onBackToDemo,
}: {
  onPickFolder: () => void;
  /** the embedded demo's models again (null when the failed models are the demo's) */
  onBackToDemo: (() => void) | null;
}) {
  const session = useSession();
  const loads = useLab((s) => s.loads);
  const status = useLab((s) => s.promptStatus);
  const error = useLab((s) => s.promptError);
  const problem = useLab((s) => s.promptProblem);
  const setSpec = useLab((s) => s.setSpec);
  const rows = Object.values(loads);
  const downloads = rows.filter((p) => p.bytes !== undefined);
  const running = status === 'running';

  const setDtype = (dtype: ExperimentSpec['runtime']['dtype']) =>
    setSpec((s) => ({ ...s, runtime: { ...s.runtime, dtype } }));

  return (
    <div className="load-status small">
      {running && rows.length > 0 && (
        <ul className="plain stack" role="status" aria-label="loading models" data-testid="load-progress">
          {rows.map((p) => (
            <li key={p.model} className="progress-row" data-model={p.model} data-stage={p.stage}>
              <span className="mono">{p.model}</span> <span>{describeProgress(p)}</span>
              <progress max={p.total || 1} value={p.loaded} aria-label={`loading ${p.model}`} />
              {p.notCached && <NotCached text={p.notCached} />}
            </li>
          ))}
          <li>
            <button type="button" className="btn small" onClick={() => session?.cancelRun()}>
              Cancel loading
            </button>{' '}
            <span className="muted">files already downloaded stay in the cache; loading again resumes</span>
          </li>
        </ul>
      )}
      {status === 'cancelled' && rows.length > 0 && (
        <p className="muted" data-testid="load-cancelled">
          Loading was cancelled.{' '}
          <button type="button" className="btn small" onClick={() => void session?.retryLoad()}>
            Load again
          </button>
        </p>
      )}
      {!running && status === 'done' && downloads.length > 0 && (
        <ul className="plain muted" data-testid="last-load">
          {downloads.map((p) => (
            <li key={p.model} data-model={p.model} data-cached={p.fetched ? 'false' : 'true'}>
              <span className="mono">{p.model}</span>:{' '}
              {p.fetched ? `downloaded ${formatBytes(p.bytes)}` : `from cache (${formatBytes(p.bytes)})`}
              {p.notCached && <NotCached text={p.notCached} />}
            </li>
          ))}
        </ul>
      )}
      {status === 'error' && error && (
        <div role="alert" className="error stack" data-testid="load-error" data-problem={problem?.kind ?? ''}>
          <p>Could not load the models: {error}</p>
          <div className="row wrap">
            {problem?.kind === 'confirm-base' && (
              <button
                type="button"
                className="btn small primary"
                onClick={() => void session?.confirmBase(problem.adapter, problem.base)}
              >
                Load the adapter on {problem.base}
              </button>
            )}
            {problem?.kind === 'confirm-base' && problem.declared && isRepo(problem.declared) && (
              <button
                type="button"
                className="btn small"
                onClick={() => setSpec((s) => withBase(s, problem.base, problem.declared ?? problem.base))}
              >
                Use {problem.declared} as the base
              </button>
            )}
            {problem?.kind === 'memory' && problem.suggestion && (
              <button
                type="button"
                className="btn small primary"
                onClick={() => setDtype(problem.suggestion ?? 'q4')}
              >
                Switch to{' '}
                {problem.suggestion === 'q4'
                  ? '4-bit weights (q4)'
                  : problem.suggestion === 'int8'
                    ? '8-bit weights (int8)'
                    : problem.suggestion}
              </button>
            )}
            {problem?.kind === 'auth' && (
              <button
                type="button"
                className="btn small primary"
                onClick={() => document.getElementById(TOKEN_INPUT_ID)?.focus()}
              >
                Enter a token
              </button>
            )}
            {problem?.kind === 'local-missing' && (
              <button type="button" className="btn small primary" onClick={onPickFolder}>
                Pick the folder
              </button>
            )}
            <button type="button" className="btn small" onClick={() => void session?.retryLoad()}>
              Retry
            </button>
            {onBackToDemo && (
              <button type="button" className="btn small" onClick={onBackToDemo} data-testid="back-to-demo">
                Back to the demo
              </button>
            )}
          </div>
        </div>
      )}
    </div>
  );
}
