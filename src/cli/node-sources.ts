// Node side of model sources: demo → the repo's demo/fixture folders, local → a folder, url → HTTP
// (a URL in the Hub's layout, `<endpoint>/<owner>/<name>`, is read as a Hub repo), hub → the Hub
// client + the download cache folder (hub/hub-files.ts), with progress on stderr. Only the CLI (and
// Node tests) import this. Must never print or store the token, and never send it to a URL that is
// not on the configured Hub endpoint.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { folderSource } from '../hub/folder-files-node';
import type { FileSource } from '../engine/files';
import { urlSource } from '../hub/url-files';
import { memoryDownloadCache, type DownloadCache } from '../hub/download-cache';
import { defaultDownloadCacheDir, folderDownloadCache } from '../hub/download-cache-node';
import {
  DEFAULT_HUB_ENDPOINT,
  HubClient,
  isHubError,
  parseHubUrl,
  type HubErrorReason,
} from '../hub/hub-api';
import { openHubSource, type HubProgress, type HubSource } from '../hub/hub-files';
import { formatBytes } from '../common/format';
import { DEMO_MODELS } from '../lab/run/demo';
import type { ModelSource } from '../lab/spec/experiment';

/** The repository root (two folders above this file). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const HUB_ENDPOINT = (process.env.HF_ENDPOINT ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');

export interface NodeHubOptions {
  /** default HF_ENDPOINT, else the public Hub */
  endpoint?: string;
  /** default HF_TOKEN; sent only to `endpoint` */
  token?: string | null;
  /** default the folder cache (PIGGYBACK_CACHE or ~/.cache/piggyback); null: memory only */
  cache?: DownloadCache | null;
  /** ask the Hub for the file list again even when the cache remembers one */
  refresh?: boolean;
  /** 'ranges': read safetensors headers without downloading weights (inspect) */
  mode?: 'download' | 'ranges';
  /** download every file a load needs before returning (one progress stream) */
  prefetch?: boolean;
  onProgress?: (p: HubProgress) => void;
  fetch?: typeof fetch;
}

let sharedDownloadCache: DownloadCache | null = null;

function downloadCacheOf(opts: NodeHubOptions): DownloadCache {
  if (opts.cache === null) return memoryDownloadCache();
  if (opts.cache) return opts.cache;
  sharedDownloadCache ??= folderDownloadCache(defaultDownloadCacheDir());
  return sharedDownloadCache;
}

async function openHub(
  endpoint: string,
  repo: string,
  revision: string | undefined,
  opts: NodeHubOptions,
): Promise<HubSource> {
  const configured = (opts.endpoint ?? HUB_ENDPOINT).replace(/\/+$/, '');
  const token = opts.token === undefined ? (process.env.HF_TOKEN ?? null) : opts.token;
  // NOTE: a URL source on another host never gets the token (a shared spec could name any host).
  const client = new HubClient({
    endpoint,
    token: endpoint === configured ? token : null,
    fetch: opts.fetch,
  });
  const src = await openHubSource({
    client,
    cache: downloadCacheOf(opts),
    repo,
    revision,
    refresh: opts.refresh,
    mode: opts.mode,
    onProgress: opts.onProgress,
  });
  if (opts.prefetch) await src.prefetch();
  return src;
}

/** Hub answers that mean "this host is not a Hub" rather than "this repo is wrong". */
const NOT_A_HUB: readonly HubErrorReason[] = [
  'repo_not_found',
  'revision_not_found',
  'bad_response',
  'entry_not_found',
];

export async function resolveNodeSource(
  source: ModelSource,
  cwd = process.cwd(),
  opts: NodeHubOptions = {},
): Promise<FileSource> {
  switch (source.kind) {
    case 'demo':
      return folderSource(path.join(REPO_ROOT, DEMO_MODELS[source.name].folder));
    case 'local':
      return folderSource(path.resolve(cwd, source.path));
    case 'url': {
      const plain = () =>
        urlSource(source.url.endsWith('/') ? source.url : `${source.url}/`, { fetch: opts.fetch });
      const hub = parseHubUrl(source.url);
      if (!hub) return plain();
      try {
        return await openHub(hub.endpoint, hub.repo, hub.revision, opts);
      } catch (e) {
        if (!isHubError(e) || !NOT_A_HUB.includes(e.reason)) throw e;
        // NOTE: not a Hub after all (a static folder two levels deep): read it as plain files, unless
        // it has no model either — then the Hub's message is the useful one.
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
      return openHub((opts.endpoint ?? HUB_ENDPOINT).replace(/\/+$/, ''), source.repo, source.revision, opts);
  }
}

/** A model source from a CLI argument: an existing folder, an http(s) URL, or a hub id. */
export function parseSourceArg(arg: string, exists: (p: string) => boolean): ModelSource {
  if (/^https?:\/\//.test(arg)) return { kind: 'url', url: arg };
  if (arg.startsWith('demo:')) {
    const name = arg.slice(5);
    if (!(name in DEMO_MODELS))
      throw new Error(`unknown demo model "${name}" (known: ${Object.keys(DEMO_MODELS).join(', ')})`);
    return { kind: 'demo', name: name as keyof typeof DEMO_MODELS };
  }
  if (exists(arg) || arg.startsWith('.') || arg.startsWith('/')) return { kind: 'local', path: arg };
  const m = /^([\w.-]+\/[\w.-]+)(?:@([\w./-]+))?$/.exec(arg);
  if (m) return { kind: 'hub', repo: m[1], ...(m[2] ? { revision: m[2] } : {}) };
  throw new Error(`"${arg}" is not a folder, a URL or a hub id (owner/name[@revision])`);
}

/** Download progress on stderr: a running line on a terminal, else a line per finished file (and every 5 s). */
export function stderrProgress(
  write: (s: string) => void = (s) => process.stderr.write(s),
  tty = process.stderr.isTTY === true,
) {
  let lastLine = 0;
  const seenCached = new Set<string>();
  return (p: HubProgress): void => {
    if (p.cached) {
      const key = `${p.repo}/${p.file}`;
      if (p.fileDone && !seenCached.has(key)) write(`  ${p.repo}: ${p.file} (cached)\n`);
      seenCached.add(key);
      return;
    }
    const eta = (s: number | null) =>
      s === null ? '?' : s < 90 ? `${Math.ceil(s)}s` : `${Math.ceil(s / 60)}min`;
    // NOTE: a rate over a file that came in one chunk means nothing; show it from 1 MiB on.
    const rate = p.rate > 0 && p.fileLoaded >= 1 << 20 ? `, ${formatBytes(Math.round(p.rate))}/s` : '';
    if (p.fileDone) {
      write(`${tty ? '\r\x1b[K' : ''}  ${p.repo}: ${p.file} ${formatBytes(p.fileLoaded)} ✓${rate}\n`);
      return;
    }
    const total = p.total !== null ? formatBytes(p.total) : '?';
    const line = `  ${p.repo}: ${p.file} — ${formatBytes(p.loaded)} of ${total}${rate}, ETA ${eta(p.etaSeconds)}`;
    if (tty) write(`\r${line}\x1b[K`);
    else if (Date.now() - lastLine > 5000 && p.fileLoaded > 0) {
      write(`${line}\n`);
      lastLine = Date.now();
    }
  };
}

/** Hub options from CLI flags (`--token`, `--no-cache`, `--refresh`) and the environment. */
export function cliHubOptions(
  flags: ReadonlyMap<string, string | true>,
  env: Record<string, string | undefined> = process.env,
): NodeHubOptions & { token: string | null } {
  const t = flags.get('token');
  const token = (typeof t === 'string' ? t : null) ?? env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN ?? null;
  return {
    endpoint: (env.HF_ENDPOINT ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, ''),
    token: token?.trim() || null,
    cache: flags.has('no-cache')
      ? null
      : env.PIGGYBACK_CACHE
        ? folderDownloadCache(path.resolve(env.PIGGYBACK_CACHE))
        : undefined,
    refresh: flags.has('refresh'),
    onProgress: stderrProgress(),
  };
}

export const HUB_USAGE = `hub options (run, sweep, drift, eval, inspect):
  --token <hf_…>   token for gated/private repos (better: the HF_TOKEN environment variable,
                   which stays out of the process list); sent only to HF_ENDPOINT
  --refresh        ask the Hub for the file list again (default: the cached one, no request)
  --no-cache       keep downloads in memory only
  environment: HF_ENDPOINT (default ${DEFAULT_HUB_ENDPOINT}), HF_TOKEN, PIGGYBACK_CACHE (default ~/.cache/piggyback)
  piggyback cache [list | clear [owner/name]]   the download cache`;
