// A FileSource over a Hub repo and the download cache, so `loadModel` / `loadLora` read Hub repos
// unchanged: `has` answers from the repo's file list, every read is served from the cache, a file
// not cached yet is downloaded whole first (progress, retry, resume, size check), and the file list
// itself is remembered so a second load makes no request at all (`refresh` asks the Hub again).
// When the cache cannot keep a file (a private window's Cache Storage, a full quota) the load goes on
// with the bytes already downloaded, and every later progress event carries `notCached`, the words
// telling the user the next visit downloads again.
// Must never read a file the file list does not name, never download a file twice at once, never
// cache a file whose size or sha256 is wrong, never download or read a JSON file past its limit
// (engine/files.ts), and never import Node APIs or the DOM.

import {
  notCachedMessage,
  type CacheKey,
  type Committed,
  type DownloadCache,
  type NotStoredReason,
} from './download-cache';
import { download, RateMeter, etaSeconds, type DownloadProgress } from './http-download';
import type { RetryPolicy, Sleep } from './retry';
import {
  abortError,
  DEFAULT_HUB_ENDPOINT,
  DEFAULT_REVISION,
  formatHubId,
  HubClient,
  HubError,
  isHubError,
  type HubFileInfo,
  type HubRef,
  type RepoInfo,
} from './hub-api';
import { isTextFile, parseJsonText, textFileLimit, tooLargeError, type FileSource } from '../engine/files';
import { checkedReader, parseShardIndex, type RandomAccessReader } from '../engine/safetensors';
import { EngineError } from '../engine/errors';

export interface HubProgress {
  repo: string;
  revision: string;
  file: string;
  fileLoaded: number;
  fileTotal: number | null;
  /** bytes on hand over all files of the current prefetch (or of this one file) */
  loaded: number;
  total: number | null;
  /** bytes per second actually downloaded (cache hits excluded) */
  rate: number;
  etaSeconds: number | null;
  /** this file came from the cache, no request made */
  cached: boolean;
  /** this file is complete */
  fileDone: boolean;
  /** every file of the prefetch is complete */
  done: boolean;
  /**
   * files of this source the cache refused to keep (held in memory for this page): their bytes and
   * the user's line ("not cached: this browser refused to store 988 MB (…); the next visit downloads
   * again"); absent while every file was kept
   */
  notCached?: { bytes: number; message: string };
}

export interface HubSourceOptions {
  client: HubClient;
  cache: DownloadCache;
  repo: string;
  revision?: string;
  /** ask the Hub for the file list even when the cache remembers one (falls back to it offline) */
  refresh?: boolean;
  /**
   * 'download' (default): every file read is downloaded whole into the cache first.
   * 'ranges': large files not cached yet are read with HTTP range requests and not cached (for
   * `inspect`, which only needs safetensors headers).
   */
  mode?: 'download' | 'ranges';
  onProgress?: (p: HubProgress) => void;
  signal?: AbortSignal;
  retry?: Partial<RetryPolicy>;
  progressIntervalMs?: number;
  sleep?: Sleep;
  now?: () => number;
}

export type RepoKind = 'model' | 'adapter' | 'unknown';

export interface HubSourceStats {
  /** HTTP requests this source made (file list included) */
  requests: number;
  downloadedBytes: number;
  /** files served from the cache without a request */
  cacheHits: number;
  /** bytes downloaded that the cache refused to keep (held in memory for this page only) */
  notCachedBytes: number;
}

export interface HubSource extends FileSource {
  readonly ref: HubRef;
  readonly endpoint: string;
  readonly info: RepoInfo;
  /** true when the file list came from the cache (no request was made for it) */
  readonly infoFromCache: boolean;
  readonly kind: RepoKind;
  /** the file list entry, or null */
  file(path: string): HubFileInfo | null;
  /** makes sure `path` is in the cache, downloading it if needed */
  ensure(path: string): Promise<void>;
  /** the files a model (or adapter) load reads, weights last */
  neededFiles(): Promise<string[]>;
  /** total bytes of `files` by the file list (null when a size is unknown) */
  sizeOf(files: string[]): number | null;
  /** downloads `files` (default: neededFiles()) into the cache with one progress stream */
  prefetch(files?: string[]): Promise<{
    files: string[];
    downloadedBytes: number;
    cachedBytes: number;
    /** downloaded bytes the cache refused to keep (the next visit downloads them again) */
    notCachedBytes: number;
  }>;
  stats(): HubSourceStats;
}

/** What a repo holds: a full model, a PEFT adapter, or neither. */
export function repoKind(has: (p: string) => boolean): RepoKind {
  const weights = has('model.safetensors') || has('model.safetensors.index.json');
  if (has('config.json') && weights) return 'model';
  if (has('adapter_config.json') && has('adapter_model.safetensors')) return 'adapter';
  if (has('adapter_config.json')) return 'adapter';
  return has('config.json') ? 'model' : 'unknown';
}

const MODEL_SIDE_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'chat_template.jinja',
];

export async function openHubSource(opts: HubSourceOptions): Promise<HubSource> {
  const { client, cache, repo, signal } = opts;
  const revision = opts.revision ?? DEFAULT_REVISION;
  const stats: HubSourceStats = { requests: 0, downloadedBytes: 0, cacheHits: 0, notCachedBytes: 0 };
  let notStored: NotStoredReason | null = null;
  const notCached = () =>
    notStored === null
      ? {}
      : {
          notCached: {
            bytes: stats.notCachedBytes,
            message: notCachedMessage(stats.notCachedBytes, notStored),
          },
        };
  const ref: HubRef = { repo, revision };

  // NOTE: everything cached is keyed by the endpoint's origin too: another host serving the same
  // owner/name (a URL source in the Hub's layout) never shares a file list or a file with this one.
  const origin = client.origin;
  const infoKey = { origin, repo, revision };
  let info: RepoInfo | null = opts.refresh ? null : await cache.getInfo(infoKey);
  let infoFromCache = info !== null;
  if (!info) {
    try {
      stats.requests++;
      info = await client.modelInfo(repo, revision, signal);
      // NOTE: a file list the cache cannot keep is only not remembered: the load goes on.
      await cache.putInfo(origin, info).catch(() => undefined);
    } catch (e) {
      // NOTE: offline with a remembered file list: use it, the files are most likely cached too.
      const fallback = isHubError(e, 'network') ? await cache.getInfo(infoKey) : null;
      if (!fallback) throw e;
      info = fallback;
      infoFromCache = true;
    }
  }
  const repoInfo = info;
  const files = new Map(repoInfo.files.map((f) => [f.path, f]));
  const has = (p: string) => files.has(p);
  // NOTE: files are fetched and cached at the resolved commit, so a branch that moves mid-download
  // (or between sessions) never mixes two versions; a commit id asked for directly is its own key.
  const pinned = repoInfo.commit ?? revision;
  const keyOf = (file: string): CacheKey => ({ origin, repo, revision: pinned, file });
  const endpointLabel = client.endpoint === DEFAULT_HUB_ENDPOINT ? '' : `${client.endpoint}/`;
  const id = `${endpointLabel}${formatHubId(ref)}`;
  const inflight = new Map<string, Promise<void>>();
  const now = opts.now ?? (() => Date.now());

  const entry = (path: string): HubFileInfo => {
    const f = files.get(path);
    if (!f) {
      throw new HubError('entry_not_found', `${id}: no file ${path} in the repo's file list`, {
        file: path,
        source: id,
      });
    }
    return f;
  };

  /** `repeat`: the file's done event once more, after its commit (bytes already counted) */
  type Report = (p: DownloadProgress & { cached: boolean; repeat?: boolean }) => void;

  const singleReport =
    (path: string): Report =>
    (p) =>
      opts.onProgress?.({
        repo,
        revision,
        file: path,
        fileLoaded: p.loaded,
        fileTotal: p.total,
        loaded: p.loaded,
        total: p.total,
        rate: p.rate,
        etaSeconds: p.etaSeconds,
        cached: p.cached,
        fileDone: p.done,
        done: p.done,
        ...notCached(),
      });

  /** `too_large` for a text file over its limit (size from the file list, or null mid-download). */
  const textTooLarge = (path: string, size: number | null): HubError => {
    const e = tooLargeError(id, path, size);
    return new HubError('too_large', e.message, e.details);
  };

  const fetchFile = async (path: string, report: Report): Promise<void> => {
    const f = entry(path);
    // NOTE: a JSON file the file list says is huge is refused before any request; with no size
    // listed, the download stops at the limit.
    const limit = isTextFile(path) ? textFileLimit(path) : null;
    if (limit !== null && f.size !== null && f.size > limit) throw textTooLarge(path, f.size);
    const key = keyOf(path);
    const hit = await cache.open(key, f.size);
    if (hit) {
      stats.cacheHits++;
      report({
        file: path,
        loaded: hit.size,
        total: hit.size,
        rate: 0,
        etaSeconds: 0,
        attempt: 0,
        done: true,
        cached: true,
      });
      return;
    }
    if (signal?.aborted) throw abortError();
    const url = client.fileUrl(repo, pinned, path);
    const writer = await cache.writer(key, { size: f.size, sha256: f.sha256 });
    let committed: Committed;
    let size = 0;
    try {
      const before = writer.offset;
      const r = await download({
        file: `${id}/${path}`,
        get: (headers, s) => {
          stats.requests++;
          return client.request(url, { headers, signal: s });
        },
        errorFor: (res) => client.errorFor(res, { repo, revision, file: path }),
        expectedSize: f.size,
        expectedSha256: f.sha256,
        limit: limit === null ? undefined : { bytes: limit, error: (size) => textTooLarge(path, size) },
        sink: writer,
        retry: opts.retry,
        onProgress: (p) => report({ ...p, file: path, cached: false }),
        progressIntervalMs: opts.progressIntervalMs,
        signal,
        sleep: opts.sleep,
        now: opts.now,
      });
      stats.downloadedBytes += r.size - before;
      size = r.size;
      committed = await writer.commit();
    } catch (e) {
      // NOTE: keep the bytes of an interrupted transfer (network, cancel) for a resume; a wrong
      // size or an auth failure keeps nothing.
      const keep = isHubError(e) && (e.retryable || e.reason === 'aborted');
      await writer.abort(keep).catch(() => undefined);
      throw e;
    }
    if (!committed.stored) {
      // NOTE: the file is held in memory for this page (the cache's `open` serves it); say so once
      // more for this file, since its last download event went out before the commit.
      stats.notCachedBytes += size;
      if (notStored === null || committed.reason === 'quota') notStored = committed.reason;
      report({
        file: path,
        loaded: size,
        total: size,
        rate: 0,
        etaSeconds: 0,
        attempt: 0,
        done: true,
        cached: false,
        repeat: true,
      });
    }
  };

  const ensureWith = (path: string, report: Report): Promise<void> => {
    let p = inflight.get(path);
    if (!p) {
      p = fetchFile(path, report).finally(() => inflight.delete(path));
      inflight.set(path, p);
    }
    return p;
  };

  const cachedFile = async (path: string) => {
    await ensureWith(path, singleReport(path));
    const c = await cache.open(keyOf(path), entry(path).size);
    if (!c) {
      throw new EngineError('missing_file', `${id}: ${path} vanished from the cache (${cache.location})`, {
        file: path,
        source: id,
      });
    }
    return c;
  };

  const readBytes = async (path: string): Promise<Uint8Array> => (await cachedFile(path)).bytes();
  const readText = async (path: string): Promise<string> => {
    const f = entry(path);
    if (f.size !== null && f.size > textFileLimit(path)) throw textTooLarge(path, f.size);
    const c = await cachedFile(path);
    if (c.size > textFileLimit(path)) throw textTooLarge(path, c.size);
    return new TextDecoder().decode(await c.bytes());
  };

  const remoteReader = (path: string): RandomAccessReader => {
    const f = entry(path);
    const url = client.fileUrl(repo, pinned, path);
    if (f.size === null) {
      throw new HubError('bad_response', `${id}: the file list gives no size for ${path}`, { file: path });
    }
    return checkedReader(f.size, path, async (offset, length) => {
      stats.requests++;
      const res = await client.request(url, {
        headers: { Range: `bytes=${offset}-${offset + length - 1}` },
        signal,
      });
      if (!res.ok) {
        await res.body?.cancel().catch(() => undefined);
        throw client.errorFor(res, { repo, revision, file: path });
      }
      const bytes = new Uint8Array(await res.arrayBuffer());
      return res.status === 206 ? bytes : bytes.subarray(offset, offset + length);
    });
  };

  const neededFiles = async (): Promise<string[]> => {
    const kind = repoKind(has);
    if (kind === 'adapter') return ['adapter_config.json', 'adapter_model.safetensors'].filter(has);
    const out = MODEL_SIDE_FILES.filter(has);
    if (has('model.safetensors')) out.push('model.safetensors');
    else if (has('model.safetensors.index.json')) {
      const index = parseShardIndex(
        parseJsonText(await readText('model.safetensors.index.json'), `${id}/model.safetensors.index.json`),
      );
      out.push('model.safetensors.index.json');
      out.push(...[...new Set(Object.values(index.weight_map))].sort());
    }
    return out;
  };

  const sizeOf = (list: string[]): number | null => {
    let total = 0;
    for (const p of list) {
      const s = files.get(p)?.size;
      if (s === undefined || s === null) return null;
      total += s;
    }
    return total;
  };

  return {
    id,
    ref,
    endpoint: client.endpoint,
    info: repoInfo,
    infoFromCache,
    kind: repoKind(has),
    file: (p) => files.get(p) ?? null,
    has: async (p) => has(p),
    readBytes,
    readText,
    readJson: async (p) => parseJsonText(await readText(p), `${id}/${p}`),
    async openRandomAccess(path) {
      entry(path);
      if (opts.mode === 'ranges') {
        const c = await cache.open(keyOf(path), entry(path).size);
        if (c) {
          stats.cacheHits++;
          return c.reader;
        }
        return remoteReader(path);
      }
      return (await cachedFile(path)).reader;
    },
    ensure: (p) => ensureWith(p, singleReport(p)),
    neededFiles,
    sizeOf,
    async prefetch(list) {
      const wanted = list ?? (await neededFiles());
      for (const p of wanted) entry(p);
      const total = sizeOf(wanted);
      const meter = new RateMeter(now);
      let finished = 0;
      let downloadedBytes = 0;
      let cachedBytes = 0;
      let fetched = 0;
      meter.add(0);
      for (let i = 0; i < wanted.length; i++) {
        const path = wanted[i];
        const last = i === wanted.length - 1;
        let fileStart = -1;
        await ensureWith(path, (p) => {
          if (p.repeat) {
            // NOTE: nothing new arrived; only `notCached` changed.
          } else if (p.cached) cachedBytes += p.loaded;
          else {
            if (fileStart < 0) fileStart = p.loaded;
            meter.add(fetched + p.loaded - fileStart);
          }
          const loaded = p.repeat ? finished : finished + p.loaded;
          const rate = meter.rate();
          opts.onProgress?.({
            repo,
            revision,
            file: path,
            fileLoaded: p.loaded,
            fileTotal: p.total,
            loaded,
            total,
            rate,
            etaSeconds: p.done && last ? 0 : etaSeconds(loaded, total, rate),
            cached: p.cached,
            fileDone: p.done,
            done: p.done && last,
            ...notCached(),
          });
          if (p.done && !p.repeat) {
            finished += p.loaded;
            if (!p.cached) {
              downloadedBytes += p.loaded - Math.max(0, fileStart);
              fetched += p.loaded - Math.max(0, fileStart);
            }
          }
        });
      }
      return { files: wanted, downloadedBytes, cachedBytes, notCachedBytes: stats.notCachedBytes };
    },
    stats: () => ({ ...stats }),
  };
}
