// The download cache as a folder on disk (CLI, Node tests): `<root>/files/<owner>/<name>/<revision>/
// <path>` plus `<root>/info/<owner>/<name>/<revision>.json` (the remembered file list). A download
// goes to a hidden `.part` file beside its target and is renamed into place only once its size checks
// out, so a crash never leaves a half file that looks whole, and the next run resumes the `.part`.
// Node-only (like folder-files-node.ts): the browser bundle must never import it. Must never write outside
// its root, never name anything after a token, and never keep file handles open between calls.

import { open, readFile, rename, rm, mkdir, readdir, stat, writeFile, truncate } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import {
  assertSafePath,
  infoFromJson,
  sizeError,
  type CacheEntry,
  type CacheKey,
  type CacheWriter,
  type DownloadCache,
} from './download-cache';
import type { RepoInfo } from './hub-api';
import { fileReader } from './folder-files-node';

/** `PIGGYBACK_CACHE`, else `$XDG_CACHE_HOME/piggyback`, else `~/.cache/piggyback`. */
export function defaultDownloadCacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env.PIGGYBACK_CACHE) return resolve(env.PIGGYBACK_CACHE);
  const base = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(base, 'piggyback');
}

const enc = (s: string) => encodeURIComponent(s);

function repoParts(repo: string): string[] {
  const parts = repo.split('/');
  if (parts.length !== 2 || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`"${repo}" is not owner/name`);
  }
  return parts.map(enc);
}

function partName(path: string): string {
  return join(dirname(path), `.${basename(path)}.piggyback-part`);
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : null;
  } catch {
    return null;
  }
}

export function folderDownloadCache(root: string = defaultDownloadCacheDir()): DownloadCache {
  const filesRoot = join(root, 'files');
  const infoRoot = join(root, 'info');
  const pathOf = (key: CacheKey): string => {
    assertSafePath(key.file);
    if (key.revision === '' || key.revision === '.' || key.revision === '..') throw new Error('bad revision');
    return join(filesRoot, ...repoParts(key.repo), enc(key.revision), ...key.file.split('/'));
  };
  const infoPath = (repo: string, revision: string) =>
    join(infoRoot, ...repoParts(repo), `${enc(revision)}.json`);

  return {
    kind: 'folder',
    location: root,
    async open(key, expectedSize = null) {
      const full = pathOf(key);
      const size = await sizeOf(full);
      if (size === null) return null;
      if (expectedSize !== null && size !== expectedSize) {
        await rm(full, { force: true });
        return null;
      }
      return {
        size,
        reader: fileReader(full, size, key.file),
        bytes: async () => new Uint8Array(await readFile(full)),
      };
    },
    async writer(key, expectedSize = null): Promise<CacheWriter> {
      const full = pathOf(key);
      const part = partName(full);
      await mkdir(dirname(full), { recursive: true });
      let offset = (await sizeOf(part)) ?? 0;
      if (expectedSize !== null && offset > expectedSize) {
        await truncate(part, 0);
        offset = 0;
      }
      const fh = await open(part, 'a');
      let closed = false;
      const close = async () => {
        if (!closed) {
          closed = true;
          await fh.close();
        }
      };
      return {
        get offset() {
          return offset;
        },
        async write(chunk) {
          let done = 0;
          while (done < chunk.byteLength) {
            const { bytesWritten } = await fh.write(chunk, done, chunk.byteLength - done);
            done += bytesWritten;
          }
          offset += chunk.byteLength;
        },
        async reset() {
          await fh.truncate(0);
          offset = 0;
        },
        async commit() {
          await fh.sync().catch(() => undefined);
          await close();
          const got = (await sizeOf(part)) ?? 0;
          if (expectedSize !== null && got !== expectedSize) {
            await rm(part, { force: true });
            throw sizeError(key, expectedSize, got);
          }
          await rename(part, full);
        },
        async abort(keepPartial) {
          await close();
          if (!keepPartial || offset === 0) await rm(part, { force: true });
        },
      };
    },
    async delete(key) {
      await rm(pathOf(key), { force: true });
    },
    async getInfo(repo, revision) {
      try {
        return infoFromJson(JSON.parse(await readFile(infoPath(repo, revision), 'utf8')));
      } catch {
        return null;
      }
    },
    async putInfo(info: RepoInfo) {
      const p = infoPath(info.repo, info.revision);
      await mkdir(dirname(p), { recursive: true });
      const tmp = `${p}.tmp`;
      await writeFile(tmp, JSON.stringify(info, null, 1));
      await rename(tmp, p);
    },
    async list() {
      const out: CacheEntry[] = [];
      const walk = async (dir: string, rel: string[]): Promise<void> => {
        let names: string[];
        try {
          names = await readdir(dir);
        } catch {
          return;
        }
        for (const n of names) {
          const full = join(dir, n);
          const s = await stat(full).catch(() => null);
          if (!s) continue;
          if (s.isDirectory()) await walk(full, [...rel, n]);
          else if (s.isFile() && rel.length >= 3 && !n.endsWith('.piggyback-part')) {
            const [owner, name, rev, ...sub] = rel;
            out.push({
              repo: `${decodeURIComponent(owner)}/${decodeURIComponent(name)}`,
              revision: decodeURIComponent(rev),
              file: [...sub, n].join('/'),
              size: s.size,
            });
          }
        }
      };
      await walk(filesRoot, []);
      return out;
    },
    async clear(filter) {
      let freed = 0;
      for (const e of await this.list()) if (!filter?.repo || e.repo === filter.repo) freed += e.size;
      if (filter?.repo) {
        const parts = repoParts(filter.repo);
        await rm(join(filesRoot, ...parts), { recursive: true, force: true });
        await rm(join(infoRoot, ...parts), { recursive: true, force: true });
      } else {
        await rm(filesRoot, { recursive: true, force: true });
        await rm(infoRoot, { recursive: true, force: true });
      }
      return freed;
    },
  };
}
