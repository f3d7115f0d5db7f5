// The persistent download cache: files keyed by repo + revision + file path (the revision is the
// commit the Hub resolved, so a moved branch never serves stale bytes), each with its size checked on
// the way in and on the way out, plus a small JSON record per (repo, revision asked) remembering the
// file list, so a second load needs no request at all. Implementations here: in memory, and the
// browser's Cache Storage (`caches.open`); the Node folder cache is in download-cache-node.ts.
// Must never key or store anything by token (keys are built from repo, revision and path only),
// never hand out a file whose size disagrees with the one recorded, and never import Node APIs.

import type { DownloadSink } from './http-download';
import type { RepoInfo } from './hub-api';
import { blobReader, bufferReader, type RandomAccessReader } from '../engine/safetensors';

export interface CacheKey {
  repo: string;
  /** a commit id where the Hub gave one, else the revision asked for */
  revision: string;
  file: string;
}

/** Human-readable, token-free: `owner/name@revision/path`. */
export function cacheKeyString(k: CacheKey): string {
  return `${k.repo}@${k.revision}/${k.file}`;
}

export interface CachedFile {
  size: number;
  reader: RandomAccessReader;
  bytes(): Promise<Uint8Array>;
}

/** A file being written: resume point, append, then commit (size checked) or abort. */
export interface CacheWriter extends DownloadSink {
  /** makes the file visible to `open`; throws (and keeps nothing) when the size is not `expectedSize` */
  commit(): Promise<void>;
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
  writer(key: CacheKey, expectedSize?: number | null): Promise<CacheWriter>;
  delete(key: CacheKey): Promise<void>;
  /** the file list remembered for `repo` at the revision asked for (a branch name, usually) */
  getInfo(repo: string, revision: string): Promise<RepoInfo | null>;
  putInfo(info: RepoInfo): Promise<void>;
  list(): Promise<CacheEntry[]>;
  /** removes everything (or one repo's files and records); returns the bytes freed */
  clear(filter?: { repo?: string }): Promise<number>;
}

export function sizeError(key: CacheKey, expected: number, got: number): Error {
  return new Error(`${cacheKeyString(key)}: ${got} bytes written, ${expected} expected; not cached`);
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
    files: files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 ?? null })),
  };
}

/** Chunks held in memory until commit; partial chunks survive an abort(true) for a later resume. */
class ChunkWriter implements CacheWriter {
  private chunks: Uint8Array[];
  private bytes: number;

  constructor(
    private readonly key: CacheKey,
    private readonly expectedSize: number | null,
    partial: Uint8Array[] | undefined,
    private readonly onCommit: (data: Uint8Array[], size: number) => Promise<void>,
    private readonly onAbort: (keep: Uint8Array[] | null) => void,
  ) {
    this.chunks = partial ? [...partial] : [];
    this.bytes = this.chunks.reduce((a, c) => a + c.byteLength, 0);
  }

  get offset(): number {
    return this.bytes;
  }

  async write(chunk: Uint8Array): Promise<void> {
    // NOTE: stream readers may reuse their buffers; keep a copy.
    this.chunks.push(chunk.slice());
    this.bytes += chunk.byteLength;
  }

  async reset(): Promise<void> {
    this.chunks = [];
    this.bytes = 0;
  }

  async commit(): Promise<void> {
    if (this.expectedSize !== null && this.bytes !== this.expectedSize) {
      this.onAbort(null);
      throw sizeError(this.key, this.expectedSize, this.bytes);
    }
    await this.onCommit(this.chunks, this.bytes);
    this.onAbort(null);
  }

  async abort(keepPartial: boolean): Promise<void> {
    this.onAbort(keepPartial && this.bytes > 0 ? this.chunks : null);
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

/** Keeps everything in memory (tests; a browser without Cache Storage). */
export function memoryDownloadCache(): DownloadCache {
  const files = new Map<string, { key: CacheKey; data: Uint8Array }>();
  const partials = new Map<string, Uint8Array[]>();
  const infos = new Map<string, string>();
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
    async writer(key, expectedSize = null) {
      assertSafePath(key.file);
      const k = cacheKeyString(key);
      return new ChunkWriter(
        key,
        expectedSize,
        partials.get(k),
        async (chunks, size) => {
          files.set(k, { key: { ...key }, data: concat(chunks, size) });
        },
        (keep) => {
          if (keep) partials.set(k, keep);
          else partials.delete(k);
        },
      );
    },
    async delete(key) {
      files.delete(cacheKeyString(key));
    },
    async getInfo(repo, revision) {
      const s = infos.get(`${repo}@${revision}`);
      return s ? infoFromJson(JSON.parse(s)) : null;
    },
    async putInfo(info) {
      infos.set(`${info.repo}@${info.revision}`, JSON.stringify(info));
    },
    async list() {
      return [...files.values()].map((f) => ({ ...f.key, size: f.data.byteLength }));
    },
    async clear(filter) {
      let freed = 0;
      for (const [k, f] of files) {
        if (filter?.repo && f.key.repo !== filter.repo) continue;
        freed += f.data.byteLength;
        files.delete(k);
      }
      for (const k of [...infos.keys(), ...partials.keys()]) {
        if (filter?.repo && !k.startsWith(`${filter.repo}@`)) continue;
        infos.delete(k);
        partials.delete(k);
      }
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

export const CACHE_STORAGE_NAME = 'piggyback-models-v1';
// NOTE: a made-up origin: cache entries are addressed by repo/revision/path, never by the real URL
// (which could carry an endpoint-specific query) and never by anything token-derived.
const KEY_ORIGIN = 'https://piggyback-cache.invalid';
const SIZE_HEADER = 'X-Piggyback-Size';

function keyUrl(key: CacheKey): string {
  const enc = (p: string) => p.split('/').map(encodeURIComponent).join('/');
  return `${KEY_ORIGIN}/files/${enc(key.repo)}/${encodeURIComponent(key.revision)}/${enc(key.file)}`;
}

function infoUrl(repo: string, revision: string): string {
  return `${KEY_ORIGIN}/info/${repo.split('/').map(encodeURIComponent).join('/')}/${encodeURIComponent(revision)}/${INFO_FILE}`;
}

function parseKeyUrl(url: string): CacheKey | null {
  const prefix = `${KEY_ORIGIN}/files/`;
  if (!url.startsWith(prefix)) return null;
  const parts = url.slice(prefix.length).split('/').map(decodeURIComponent);
  if (parts.length < 4) return null;
  return { repo: `${parts[0]}/${parts[1]}`, revision: parts[2], file: parts.slice(3).join('/') };
}

/**
 * Browser Cache Storage (`caches`, also available in workers on secure origins). Entries are whole
 * files as Blobs (the browser may keep them on disk); random access reads Blob slices. Partial
 * downloads are kept in memory for a resume within the session.
 */
export function cacheStorageDownloadCache(
  storage: CacheStorageLike,
  name = CACHE_STORAGE_NAME,
): DownloadCache {
  let opened: Promise<CacheLike> | null = null;
  const cache = () => (opened ??= storage.open(name));
  const partials = new Map<string, Uint8Array[]>();
  const sizeOf = (res: Response): number | null => {
    const s = res.headers.get(SIZE_HEADER);
    return s !== null && /^\d+$/.test(s) ? Number(s) : null;
  };
  return {
    kind: 'cache-storage',
    location: `Cache Storage "${name}"`,
    async open(key, expectedSize = null) {
      const c = await cache();
      const url = keyUrl(key);
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
      return {
        size: blob.size,
        reader: blobReader(blob, key.file),
        bytes: async () => new Uint8Array(await blob.arrayBuffer()),
      };
    },
    async writer(key, expectedSize = null) {
      assertSafePath(key.file);
      const url = keyUrl(key);
      return new ChunkWriter(
        key,
        expectedSize,
        partials.get(url),
        async (chunks, size) => {
          const blob = new Blob(chunks as BlobPart[]);
          await (
            await cache()
          ).put(
            url,
            new Response(blob, {
              headers: {
                'Content-Type': 'application/octet-stream',
                'Content-Length': String(size),
                [SIZE_HEADER]: String(size),
              },
            }),
          );
        },
        (keep) => {
          if (keep) partials.set(url, keep);
          else partials.delete(url);
        },
      );
    },
    async delete(key) {
      await (await cache()).delete(keyUrl(key));
    },
    async getInfo(repo, revision) {
      const res = await (await cache()).match(infoUrl(repo, revision));
      if (!res) return null;
      try {
        return infoFromJson(await res.json());
      } catch {
        return null;
      }
    },
    async putInfo(info) {
      await (
        await cache()
      ).put(
        infoUrl(info.repo, info.revision),
        new Response(JSON.stringify(info), { headers: { 'Content-Type': 'application/json' } }),
      );
    },
    async list() {
      const c = await cache();
      const out: CacheEntry[] = [];
      for (const req of await c.keys()) {
        const key = parseKeyUrl(req.url);
        if (!key) continue;
        const res = await c.match(req.url);
        const size = res ? sizeOf(res) : null;
        if (size !== null) out.push({ ...key, size });
      }
      return out;
    },
    async clear(filter) {
      const c = await cache();
      let freed = 0;
      if (!filter?.repo) {
        for (const e of await this.list()) freed += e.size;
        opened = null;
        partials.clear();
        await storage.delete(name);
        return freed;
      }
      const repoPath = filter.repo.split('/').map(encodeURIComponent).join('/');
      for (const req of await c.keys()) {
        const key = parseKeyUrl(req.url);
        const isInfo = req.url.startsWith(`${KEY_ORIGIN}/info/${repoPath}/`);
        if (key?.repo === filter.repo) {
          const res = await c.match(req.url);
          freed += (res && sizeOf(res)) ?? 0;
          await c.delete(req.url);
        } else if (isInfo) await c.delete(req.url);
      }
      for (const k of [...partials.keys()]) {
        if (parseKeyUrl(k)?.repo === filter.repo) partials.delete(k);
      }
      return freed;
    },
  };
}

/** Cache Storage where the host has it (a secure browser context), else memory. */
export function browserDownloadCache(): DownloadCache {
  const g = globalThis as { caches?: CacheStorageLike };
  return g.caches ? cacheStorageDownloadCache(g.caches) : memoryDownloadCache();
}
