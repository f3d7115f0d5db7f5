// The persistent download cache: files keyed by the endpoint's origin + repo + revision + file path
// (the revision is the commit the Hub resolved, so a moved branch never serves stale bytes; the
// origin keeps another host that serves the same owner/name — or claims the same commit — from
// planting files the real Hub's repo would then use), each with its size checked on the way in and
// out and its sha256 (the file list's, for LFS files) checked before it is kept, plus a small JSON
// record per (origin, repo, revision asked) remembering the file list, so a second load needs no
// request at all. Implementations here: in memory, and the browser's Cache Storage (`caches.open`);
// the Node folder cache is in download-cache-node.ts.
// When the store refuses a file (Cache Storage in a private window, a full quota, no Cache Storage at
// all on an insecure origin) the file is held in memory for this page instead and `commit` says so
// (`Committed`), so the bytes already downloaded are used and the user can be told.
// Must never key or store anything by token (keys are built from origin, repo, revision and path
// only), never hand out a file whose size disagrees with the one recorded, never keep a file whose
// sha256 disagrees with the one expected, never fail a load because the store refused to keep a
// file, and never import Node APIs.

import type { DownloadSink } from './http-download';
import { HubError, type RepoInfo } from './hub-api';
import { Sha256 } from './sha256';
import { blobReader, bufferReader, type RandomAccessReader } from '../engine/safetensors';
import { formatBytes } from '../common/format';

/** Where a file list came from: the endpoint's origin, the repo, the revision asked for. */
export interface InfoKey {
  /** `new URL(endpoint).origin`, e.g. `https://huggingface.co` */
  origin: string;
  repo: string;
  revision: string;
}

export interface CacheKey extends InfoKey {
  /** a commit id where the Hub gave one, else the revision asked for */
  revision: string;
  file: string;
}

/** Human-readable, token-free: `origin/owner/name@revision/path`. */
export function cacheKeyString(k: CacheKey): string {
  return `${k.origin}/${k.repo}@${k.revision}/${k.file}`;
}

/** What a file must be before the cache keeps it (from the repo's file list). */
export interface FileCheck {
  size?: number | null;
  /** lowercase hex sha256 of the content (LFS files) */
  sha256?: string | null;
}

/** An incremental hash (Sha256 here; the folder cache passes node:crypto's, which is faster). */
export interface Hasher {
  update(data: Uint8Array): unknown;
  hex(): string;
}

export const tsSha256 = (): Hasher => new Sha256();

/** Refuses anything but a bare `scheme://host[:port]` origin (it names folders and cache URLs). */
export function assertOrigin(origin: string): void {
  let ok = false;
  try {
    ok = new URL(origin).origin === origin && /^https?:/.test(origin);
  } catch {
    ok = false;
  }
  if (!ok) throw new Error(`"${origin}" is not an http(s) origin`);
}

export interface CachedFile {
  size: number;
  reader: RandomAccessReader;
  bytes(): Promise<Uint8Array>;
}

/**
 * Why a file the cache was given is held in memory for this page only: `refused` (the store failed
 * to write it: a private window's Cache Storage, an internal error), `quota` (QuotaExceededError),
 * `unavailable` (no Cache Storage here: an insecure origin, or `caches.open` refused).
 */
export type NotStoredReason = 'refused' | 'quota' | 'unavailable';

/** What `commit` did: kept the file in the store, or held it in memory for this page only. */
export type Committed = { stored: true } | { stored: false; reason: NotStoredReason; detail: string };

/** The store's refusal (a DOMException, usually) as a reason and its detail for messages. */
export function notStoredReason(e: unknown): { reason: NotStoredReason; detail: string } {
  const name = typeof e === 'object' && e !== null && 'name' in e ? String(e.name) : '';
  const message = e instanceof Error ? e.message : String(e);
  const detail = name && !message.includes(name) ? `${name}: ${message}` : message;
  return { reason: name === 'QuotaExceededError' ? 'quota' : 'refused', detail };
}

/** The user's line for `bytes` the browser would not keep, e.g. "not cached: this browser refused …". */
export function notCachedMessage(bytes: number, reason: NotStoredReason): string {
  const b = formatBytes(bytes);
  switch (reason) {
    case 'quota':
      return `not cached: this browser refused to store ${b} (its storage quota is full: a private window or no disk space); the next visit downloads again`;
    case 'refused':
      return `not cached: this browser refused to store ${b} (private window or no space); the next visit downloads again`;
    case 'unavailable':
      return `not cached: this page has no Cache Storage (an insecure origin or a private window), so ${b} are held in memory only; the next visit downloads again`;
  }
}

/** A file being written: resume point, append, then commit (size and sha256 checked) or abort. */
export interface CacheWriter extends DownloadSink {
  /**
   * makes the file visible to `open`; throws (and keeps nothing) when the size or the sha256 is not
   * the one the writer was opened with. When the store refuses the bytes, the file is held in memory
   * for this page (still visible to `open`) and the result says `stored: false` — never a throw.
   */
  commit(): Promise<Committed>;
  /** stops writing; `keepPartial` keeps the bytes so a later writer resumes from them */
  abort(keepPartial: boolean): Promise<void>;
}

export interface CacheEntry extends CacheKey {
  size: number;
}

export interface DownloadCache {
  readonly kind: 'memory' | 'cache-storage' | 'folder';
  /** where it lives, for messages (a folder path, a Cache Storage name) */
  readonly location: string;
  /** the file, or null when absent or when its size is not `expectedSize` (then it is deleted) */
  open(key: CacheKey, expectedSize?: number | null): Promise<CachedFile | null>;
  writer(key: CacheKey, check?: FileCheck): Promise<CacheWriter>;
  delete(key: CacheKey): Promise<void>;
  /** the file list remembered for a repo on an origin at the revision asked for (a branch, usually) */
  getInfo(key: InfoKey): Promise<RepoInfo | null>;
  /** remembers `info` (its repo and the revision asked for) under `origin` */
  putInfo(origin: string, info: RepoInfo): Promise<void>;
  list(): Promise<CacheEntry[]>;
  /** removes everything (or one repo's files and records); returns the bytes freed */
  clear(filter?: { repo?: string }): Promise<number>;
}

export function sizeError(key: CacheKey, expected: number, got: number): HubError {
  return new HubError(
    'size_mismatch',
    `${cacheKeyString(key)}: ${got} bytes written, ${expected} expected; not cached`,
    { file: key.file, expected, got },
  );
}

export function hashError(key: CacheKey, expected: string, got: string): HubError {
  return new HubError(
    'hash_mismatch',
    `sha256 mismatch for ${key.file}: expected ${expected}, got ${got}; the server sent a different file — the download was discarded (${key.origin} may not be serving ${key.repo} as published)`,
    { file: key.file, expected, got, origin: key.origin },
  );
}

/** Checks a repo-relative path: no empty, `.` or `..` parts, no backslashes, no leading `/`. */
export function assertSafePath(path: string): void {
  if (
    path === '' ||
    path.includes('\\') ||
    path.includes('\0') ||
    path.split('/').some((p) => p === '' || p === '.' || p === '..')
  ) {
    throw new Error(`"${path}" is not a safe relative file path`);
  }
}

/** RepoInfo from a cached JSON record (null when it is not one). */
export function infoFromJson(json: unknown): RepoInfo | null {
  if (typeof json !== 'object' || json === null) return null;
  const o = json as Record<string, unknown>;
  if (typeof o.repo !== 'string' || typeof o.revision !== 'string' || !Array.isArray(o.files)) return null;
  const files = o.files.filter(
    (f): f is RepoInfo['files'][number] =>
      typeof f === 'object' &&
      f !== null &&
      typeof (f as Record<string, unknown>).path === 'string' &&
      ((f as Record<string, unknown>).size === null ||
        typeof (f as Record<string, unknown>).size === 'number'),
  );
  return {
    repo: o.repo,
    revision: o.revision,
    commit: typeof o.commit === 'string' ? o.commit : null,
    gated: o.gated === 'auto' || o.gated === 'manual' ? o.gated : false,
    private: o.private === true,
    files: files.map((f) => ({
      path: f.path,
      size: f.size,
      sha256: typeof f.sha256 === 'string' && /^[0-9a-f]{64}$/.test(f.sha256) ? f.sha256 : null,
    })),
  };
}

/** Bytes of an interrupted download kept in memory, with the validator they came with. */
interface HeldPart {
  chunks: Uint8Array[];
  validator: string | null;
}

/** Chunks held in memory until commit; partial chunks survive an abort(true) for a later resume. */
class ChunkWriter implements CacheWriter {
  private chunks: Uint8Array[];
  private bytes: number;
  private hasher: Hasher | null;
  validator: string | null;

  constructor(
    private readonly key: CacheKey,
    private readonly check: FileCheck,
    partial: HeldPart | undefined,
    private readonly onCommit: (data: Uint8Array[], size: number) => Promise<Committed | void>,
    private readonly onAbort: (keep: HeldPart | null) => void,
  ) {
    this.chunks = partial ? [...partial.chunks] : [];
    this.validator = partial?.validator ?? null;
    this.bytes = this.chunks.reduce((a, c) => a + c.byteLength, 0);
    this.hasher = check.sha256 ? tsSha256() : null;
    for (const c of this.chunks) this.hasher?.update(c);
  }

  get offset(): number {
    return this.bytes;
  }

  async write(chunk: Uint8Array): Promise<void> {
    // NOTE: stream readers may reuse their buffers; keep a copy.
    const copy = chunk.slice();
    this.chunks.push(copy);
    this.hasher?.update(copy);
    this.bytes += chunk.byteLength;
  }

  async reset(): Promise<void> {
    this.chunks = [];
    this.bytes = 0;
    this.validator = null;
    this.hasher = this.check.sha256 ? tsSha256() : null;
  }

  async setValidator(validator: string | null): Promise<void> {
    this.validator = validator;
  }

  async commit(): Promise<Committed> {
    const size = this.check.size ?? null;
    if (size !== null && this.bytes !== size) {
      this.onAbort(null);
      throw sizeError(this.key, size, this.bytes);
    }
    if (this.check.sha256 && this.hasher) {
      const got = this.hasher.hex();
      if (got !== this.check.sha256) {
        this.onAbort(null);
        throw hashError(this.key, this.check.sha256, got);
      }
    }
    const done = (await this.onCommit(this.chunks, this.bytes)) ?? { stored: true };
    this.onAbort(null);
    this.chunks = [];
    return done;
  }

  async abort(keepPartial: boolean): Promise<void> {
    this.onAbort(keepPartial && this.bytes > 0 ? { chunks: this.chunks, validator: this.validator } : null);
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  return out;
}

const INFO_FILE = '.piggyback-info.json';

/** `origin owner/name@revision`: the key of a remembered file list. */
const infoKeyString = (k: InfoKey) => `${k.origin} ${k.repo}@${k.revision}`;

/**
 * Keeps everything in memory (tests; a browser without Cache Storage, where `notStored` gives the
 * reason every commit reports, since nothing outlives the page).
 */
export function memoryDownloadCache(
  opts: { notStored?: { reason: NotStoredReason; detail: string } } = {},
): DownloadCache {
  const files = new Map<string, { key: CacheKey; data: Uint8Array }>();
  const partials = new Map<string, { key: CacheKey; part: HeldPart }>();
  const infos = new Map<string, { key: InfoKey; json: string }>();
  return {
    kind: 'memory',
    location: 'memory',
    async open(key, expectedSize = null) {
      const k = cacheKeyString(key);
      const f = files.get(k);
      if (!f) return null;
      if (expectedSize !== null && f.data.byteLength !== expectedSize) {
        files.delete(k);
        return null;
      }
      return { size: f.data.byteLength, reader: bufferReader(f.data, key.file), bytes: async () => f.data };
    },
    async writer(key, check = {}) {
      assertOrigin(key.origin);
      assertSafePath(key.file);
      const k = cacheKeyString(key);
      return new ChunkWriter(
        key,
        check,
        partials.get(k)?.part,
        async (chunks, size): Promise<Committed> => {
          files.set(k, { key: { ...key }, data: concat(chunks, size) });
          return opts.notStored ? { stored: false, ...opts.notStored } : { stored: true };
        },
        (keep) => {
          if (keep) partials.set(k, { key: { ...key }, part: keep });
          else partials.delete(k);
        },
      );
    },
    async delete(key) {
      files.delete(cacheKeyString(key));
    },
    async getInfo(key) {
      const s = infos.get(infoKeyString(key));
      return s ? infoFromJson(JSON.parse(s.json)) : null;
    },
    async putInfo(origin, info) {
      assertOrigin(origin);
      const key = { origin, repo: info.repo, revision: info.revision };
      infos.set(infoKeyString(key), { key, json: JSON.stringify(info) });
    },
    async list() {
      return [...files.values()].map((f) => ({ ...f.key, size: f.data.byteLength }));
    },
    async clear(filter) {
      let freed = 0;
      const hit = (repo: string) => !filter?.repo || repo === filter.repo;
      for (const [k, f] of files) {
        if (!hit(f.key.repo)) continue;
        freed += f.data.byteLength;
        files.delete(k);
      }
      for (const [k, v] of infos) if (hit(v.key.repo)) infos.delete(k);
      for (const [k, v] of partials) if (hit(v.key.repo)) partials.delete(k);
      return freed;
    },
  };
}

/** The subset of the Cache Storage API used here (the browser's `caches`, or a test double). */
export interface CacheStorageLike {
  open(name: string): Promise<CacheLike>;
  delete(name: string): Promise<boolean>;
}
export interface CacheLike {
  match(request: string): Promise<Response | undefined>;
  put(request: string, response: Response): Promise<void>;
  delete(request: string): Promise<boolean>;
  keys(): Promise<readonly { url: string }[]>;
}

// NOTE: v2 keys carry the endpoint's origin; v1 entries (keyed without it, never hash-checked) are
// dropped, not migrated.
export const CACHE_STORAGE_NAME = 'piggyback-downloads-v2';
const LEGACY_CACHE_STORAGE_NAMES = ['piggyback-models-v1'];
// NOTE: a made-up origin: cache entries are addressed by origin/repo/revision/path, never by the real
// URL (which could carry an endpoint-specific query) and never by anything token-derived.
const KEY_ORIGIN = 'https://piggyback-cache.invalid';
const SIZE_HEADER = 'X-Piggyback-Size';

const encPath = (p: string) => p.split('/').map(encodeURIComponent).join('/');

function keyUrl(key: CacheKey): string {
  return `${KEY_ORIGIN}/files/${encodeURIComponent(key.origin)}/${encPath(key.repo)}/${encodeURIComponent(key.revision)}/${encPath(key.file)}`;
}

function infoUrl(key: InfoKey): string {
  return `${KEY_ORIGIN}/info/${encodeURIComponent(key.origin)}/${encPath(key.repo)}/${encodeURIComponent(key.revision)}/${INFO_FILE}`;
}

/** The key a Cache Storage URL stands for (`kind` says whether a file or a file list), or null. */
function parseKeyUrl(url: string): (CacheKey & { kind: 'files' | 'info' }) | null {
  const m = /^https:\/\/piggyback-cache\.invalid\/(files|info)\/(.*)$/.exec(url);
  if (!m) return null;
  let parts: string[];
  try {
    parts = m[2].split('/').map(decodeURIComponent);
  } catch {
    return null;
  }
  if (parts.length < 5) return null;
  return {
    kind: m[1] as 'files' | 'info',
    origin: parts[0],
    repo: `${parts[1]}/${parts[2]}`,
    revision: parts[3],
    file: parts.slice(4).join('/'),
  };
}

/**
 * Browser Cache Storage (`caches`, also available in workers on secure origins). Entries are whole
 * files as Blobs (the browser may keep them on disk); random access reads Blob slices. Partial
 * downloads are kept in memory for a resume within the session. A file (or file list) the store
 * refuses — `put` rejecting in a private window or over quota, `caches.open` refusing — is held in
 * memory as its Blob for the life of this cache (the page) and `commit` says `stored: false`.
 */
export function cacheStorageDownloadCache(
  storage: CacheStorageLike,
  name = CACHE_STORAGE_NAME,
): DownloadCache {
  let opened: Promise<CacheLike | null> | null = null;
  let openRefusal: { reason: NotStoredReason; detail: string } | null = null;
  // NOTE: null when Cache Storage refuses to open (Firefox's private windows throw SecurityError):
  // every file is then held in memory, as if there were no Cache Storage.
  const cache = () =>
    (opened ??= (async () => {
      for (const legacy of LEGACY_CACHE_STORAGE_NAMES) await storage.delete(legacy).catch(() => false);
      try {
        return await storage.open(name);
      } catch (e) {
        openRefusal = { reason: 'unavailable', detail: notStoredReason(e).detail };
        return null;
      }
    })());
  const partials = new Map<string, HeldPart>();
  /** files and file lists the store refused, by key URL: this page only */
  const held = new Map<string, Blob>();
  const heldInfos = new Map<string, string>();
  const sizeOf = (res: Response): number | null => {
    const s = res.headers.get(SIZE_HEADER);
    return s !== null && /^\d+$/.test(s) ? Number(s) : null;
  };
  const heldFile = (blob: Blob, file: string): CachedFile => ({
    size: blob.size,
    reader: blobReader(blob, file),
    bytes: async () => new Uint8Array(await blob.arrayBuffer()),
  });
  return {
    kind: 'cache-storage',
    location: `Cache Storage "${name}"`,
    async open(key, expectedSize = null) {
      const url = keyUrl(key);
      const h = held.get(url);
      if (h) {
        if (expectedSize === null || h.size === expectedSize) return heldFile(h, key.file);
        held.delete(url);
        return null;
      }
      const c = await cache();
      if (!c) return null;
      const res = await c.match(url);
      if (!res) return null;
      const recorded = sizeOf(res);
      const blob = await res.blob();
      if (
        recorded === null ||
        blob.size !== recorded ||
        (expectedSize !== null && blob.size !== expectedSize)
      ) {
        await c.delete(url);
        return null;
      }
      return heldFile(blob, key.file);
    },
    async writer(key, check = {}) {
      assertOrigin(key.origin);
      assertSafePath(key.file);
      const url = keyUrl(key);
      return new ChunkWriter(
        key,
        check,
        partials.get(url),
        async (chunks, size): Promise<Committed> => {
          const blob = new Blob(chunks as BlobPart[]);
          const c = await cache();
          if (!c) {
            held.set(url, blob);
            return { stored: false, ...(openRefusal ?? { reason: 'unavailable', detail: '' }) };
          }
          try {
            await c.put(
              url,
              new Response(blob, {
                headers: {
                  'Content-Type': 'application/octet-stream',
                  'Content-Length': String(size),
                  [SIZE_HEADER]: String(size),
                },
              }),
            );
          } catch (e) {
            // NOTE: Chromium's off-the-record Cache Storage fails a large put with "Unexpected
            // internal error"; a full quota throws QuotaExceededError. The bytes are here: use them.
            await c.delete(url).catch(() => false);
            held.set(url, blob);
            return { stored: false, ...notStoredReason(e) };
          }
          held.delete(url);
          return { stored: true };
        },
        (keep) => {
          if (keep) partials.set(url, keep);
          else partials.delete(url);
        },
      );
    },
    async delete(key) {
      const url = keyUrl(key);
      held.delete(url);
      await (await cache())?.delete(url);
    },
    async getInfo(key) {
      const url = infoUrl(key);
      const h = heldInfos.get(url);
      if (h !== undefined) return infoFromJson(JSON.parse(h));
      const res = await (await cache())?.match(url);
      if (!res) return null;
      try {
        return infoFromJson(await res.json());
      } catch {
        return null;
      }
    },
    async putInfo(origin, info) {
      assertOrigin(origin);
      const url = infoUrl({ origin, repo: info.repo, revision: info.revision });
      const json = JSON.stringify(info);
      const c = await cache();
      try {
        if (!c) throw new Error('no Cache Storage');
        await c.put(url, new Response(json, { headers: { 'Content-Type': 'application/json' } }));
        heldInfos.delete(url);
      } catch {
        // NOTE: a file list the store refuses is remembered for this page only.
        heldInfos.set(url, json);
      }
    },
    async list() {
      const c = await cache();
      const out: CacheEntry[] = [];
      for (const req of c ? await c.keys() : []) {
        const parsed = parseKeyUrl(req.url);
        if (parsed?.kind !== 'files') continue;
        const { kind: _kind, ...key } = parsed;
        const res = await c?.match(req.url);
        const size = res ? sizeOf(res) : null;
        if (size !== null) out.push({ ...key, size });
      }
      return out;
    },
    async clear(filter) {
      const c = await cache();
      let freed = 0;
      for (const [url, blob] of held) {
        if (filter?.repo && parseKeyUrl(url)?.repo !== filter.repo) continue;
        freed += blob.size;
        held.delete(url);
      }
      for (const url of [...heldInfos.keys()]) {
        if (!filter?.repo || parseKeyUrl(url)?.repo === filter.repo) heldInfos.delete(url);
      }
      if (!filter?.repo) {
        for (const e of await this.list()) freed += e.size;
        opened = null;
        openRefusal = null;
        partials.clear();
        await storage.delete(name).catch(() => false);
        return freed;
      }
      for (const req of c ? await c.keys() : []) {
        const key = parseKeyUrl(req.url);
        if (key?.repo !== filter.repo) continue;
        if (key.kind === 'files') {
          const res = await c?.match(req.url);
          freed += (res && sizeOf(res)) ?? 0;
        }
        await c?.delete(req.url);
      }
      for (const k of [...partials.keys()]) {
        if (parseKeyUrl(k)?.repo === filter.repo) partials.delete(k);
      }
      return freed;
    },
  };
}

/**
 * Cache Storage where the host has it (a secure browser context), else memory — whose commits then
 * say `stored: false`, `unavailable`, since nothing outlives the page.
 */
export function browserDownloadCache(): DownloadCache {
  const g = globalThis as { caches?: CacheStorageLike };
  return g.caches
    ? cacheStorageDownloadCache(g.caches)
    : memoryDownloadCache({
        notStored: { reason: 'unavailable', detail: 'no Cache Storage (caches is undefined)' },
      });
}
