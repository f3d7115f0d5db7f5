// Browser side of model sources, for the engine worker: demo → the app's own static folders,
// url → HTTP (a URL in the Hub's layout, `<endpoint>/<owner>/<name>`, is read as a Hub repo), hub →
// the Hub client + Cache Storage (hub/hub-files.ts), with download progress turned into the worker's
// `progress` events, local → the files the user picked or dropped (hub/browser-files.ts). The token is the
// worker's in-memory one (hub/token.ts).
// Must never touch the DOM, never send the token to a host other than the Hub endpoint, and never
// put it in a message.

import { browserDownloadCache, type DownloadCache } from '../hub/download-cache';
import {
  DEFAULT_HUB_ENDPOINT,
  HubClient,
  isHubError,
  parseHubUrl,
  type HubErrorReason,
} from '../hub/hub-api';
import { openHubSource, type HubProgress } from '../hub/hub-files';
import { hubToken } from '../hub/token';
import type { FileSource } from '../engine/files';
import { urlSource } from '../hub/url-files';
import { DEMO_MODELS } from '../lab/run/demo';
import type { ModelSource } from '../lab/spec/experiment';
import { LoadProblemError } from './load-problem';
import type { LoadProgress } from './protocol';

/** A download progress event as the worker posts it: LoadProgress plus file, rate and ETA. */
export type DownloadProgressEvent = LoadProgress & {
  stage: 'download';
  file: string;
  /** bytes per second */
  rate: number;
  etaSeconds: number | null;
  cached: boolean;
};

export function toLoadProgress(p: HubProgress): DownloadProgressEvent {
  return {
    stage: 'download',
    model: p.repo,
    loaded: p.loaded,
    total: p.total ?? 0,
    file: p.file,
    rate: p.rate,
    etaSeconds: p.etaSeconds,
    cached: p.cached,
    ...(p.notCached ? { notCached: p.notCached.message } : {}),
  };
}

export interface BrowserSourceOptions {
  /** the app's origin (demo folders live there) */
  origin: string;
  /** default the public Hub */
  endpoint?: string;
  cache?: DownloadCache;
  onProgress?: (p: DownloadProgressEvent) => void;
  signal?: AbortSignal;
  refresh?: boolean;
  /** download every file a load needs before returning (default true); false for a preflight */
  prefetch?: boolean;
  fetch?: typeof fetch;
  /** the folder the user picked under this name, if any (`{kind: 'local', path: name}`) */
  local?: (path: string) => FileSource | undefined;
}

let defaultCache: DownloadCache | null = null;

/** The worker's download cache (Cache Storage when the origin is secure, else memory). */
export function workerDownloadCache(): DownloadCache {
  defaultCache ??= browserDownloadCache();
  return defaultCache;
}

const NOT_A_HUB: readonly HubErrorReason[] = [
  'repo_not_found',
  'revision_not_found',
  'bad_response',
  'entry_not_found',
];

export async function resolveBrowserSource(s: ModelSource, opts: BrowserSourceOptions): Promise<FileSource> {
  const endpoint = (opts.endpoint ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
  const open = async (ep: string, repo: string, revision: string | undefined) => {
    const src = await openHubSource({
      // NOTE: a getter, so a token pasted after a 401 is used by the retry; only for the Hub itself.
      client: new HubClient({
        endpoint: ep,
        token: ep === endpoint ? () => hubToken.get() : null,
        fetch: opts.fetch,
      }),
      cache: opts.cache ?? workerDownloadCache(),
      repo,
      revision,
      refresh: opts.refresh,
      signal: opts.signal,
      onProgress: opts.onProgress ? (p) => opts.onProgress?.(toLoadProgress(p)) : undefined,
    });
    if (opts.prefetch !== false) await src.prefetch();
    return src;
  };
  switch (s.kind) {
    case 'demo':
      return urlSource(new URL(`/${DEMO_MODELS[s.name].folder}/`, opts.origin).href, { fetch: opts.fetch });
    case 'url': {
      const plain = () => urlSource(s.url.endsWith('/') ? s.url : `${s.url}/`, { fetch: opts.fetch });
      const hub = parseHubUrl(s.url);
      if (!hub) return plain();
      try {
        return await open(hub.endpoint, hub.repo, hub.revision);
      } catch (e) {
        if (!isHubError(e) || !NOT_A_HUB.includes(e.reason)) throw e;
        const p = plain();
        if (
          (await p.has('config.json').catch(() => false)) ||
          (await p.has('adapter_config.json').catch(() => false))
        )
          return p;
        throw e;
      }
    }
    case 'hub':
      return open(endpoint, s.repo, s.revision);
    case 'local': {
      const picked = opts.local?.(s.path);
      if (picked) return picked;
      throw new LoadProblemError(
        `the local folder "${s.path}" is not open in this page: local folders never travel in links, so pick the folder (or drop it) in the models panel`,
        { kind: 'local-missing', path: s.path },
      );
    }
  }
}

/** Empties the worker's download cache (all, or one repo); returns the bytes freed. */
export async function clearDownloadCache(repo?: string): Promise<number> {
  return workerDownloadCache().clear(repo ? { repo } : undefined);
}
