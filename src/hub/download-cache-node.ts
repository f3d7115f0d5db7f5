// The download cache as a folder on disk (CLI, Node tests): `<root>/v2/files/<origin>/<owner>/<name>/
// <revision>/<path>` plus `<root>/v2/info/<origin>/<owner>/<name>/<revision>.json` (the remembered
// file list), `<origin>` being the endpoint's origin, URL-encoded. A download goes to a hidden `.part`
// file beside its target (with the ETag it came with in a `.part-etag` file, so a later run resumes
// it only under If-Range) and is renamed into place only once its size and sha256 check out, so a
// crash never leaves a half file that looks whole. Entries of the layout before origins were keys
// (`<root>/files`, `<root>/info`) are never read; `clear` removes them.
// Node-only (like folder-files-node.ts): the browser bundle must never import it. Must never write
// outside its root, never name anything after a token, and never keep file handles open between calls.

import { createHash } from 'node:crypto';
import { open, readFile, rename, rm, mkdir, readdir, stat, writeFile, truncate } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import {
  assertOrigin,
  assertSafePath,
  hashError,
  infoFromJson,
  sizeError,
  type Hasher,
  type CacheEntry,
  type CacheKey,
  type CacheWriter,
  type DownloadCache,
  type InfoKey,
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

const etagName = (part: string) => `${part}-etag`;

/** node:crypto's streaming sha256 (several times faster than the TS one the browser uses). */
const nodeSha256 = (): Hasher => {
  const h = createHash('sha256');
  return { update: (b) => h.update(b), hex: () => h.digest('hex') };
};

/** Feeds the first `length` bytes of a file to `hasher`, 1 MiB at a time. */
async function hashPrefix(path: string, length: number, hasher: Hasher): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(1 << 20);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.byteLength, length - done), done);
      if (bytesRead === 0) throw new Error(`${path} shrank while being hashed`);
      hasher.update(buf.subarray(0, bytesRead));
      done += bytesRead;
    }
  } finally {
    await fh.close();
  }
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
  const filesRoot = join(root, 'v2', 'files');
  const infoRoot = join(root, 'v2', 'info');
  const originPart = (origin: string) => {
    assertOrigin(origin);
    return enc(origin);
  };
  const pathOf = (key: CacheKey): string => {
    assertSafePath(key.file);
    if (key.revision === '' || key.revision === '.' || key.revision === '..') throw new Error('bad revision');
    return join(
      filesRoot,
      originPart(key.origin),
      ...repoParts(key.repo),
      enc(key.revision),
      ...key.file.split('/'),
    );
  };
  const infoPath = (key: InfoKey) =>
    join(infoRoot, originPart(key.origin), ...repoParts(key.repo), `${enc(key.revision)}.json`);

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
    async writer(key, check = {}): Promise<CacheWriter> {
      const full = pathOf(key);
      const part = partName(full);
      const expectedSize = check.size ?? null;
      await mkdir(dirname(full), { recursive: true });
      let offset = (await sizeOf(part)) ?? 0;
      let validator: string | null = null;
      if (offset > 0) validator = (await readFile(etagName(part), 'utf8').catch(() => '')).trim() || null;
      if (expectedSize !== null && offset > expectedSize) {
        await truncate(part, 0);
        offset = 0;
      }
      // NOTE: the bytes a `.part` already holds are hashed when the first write or the commit needs
      // them, so a resume that starts over (no validator) never reads them.
      let hasher: Hasher | null = check.sha256 ? nodeSha256() : null;
      let unhashed = hasher ? offset : 0;
      const catchUp = async () => {
        if (hasher && unhashed > 0) {
          await hashPrefix(part, unhashed, hasher);
          unhashed = 0;
        }
      };
      const fh = await open(part, 'a');
      let closed = false;
      const close = async () => {
        if (!closed) {
          closed = true;
          await fh.close();
        }
      };
      const discard = async () => {
        await rm(part, { force: true });
        await rm(etagName(part), { force: true });
      };
      return {
        get offset() {
          return offset;
        },
        get validator() {
          return validator;
        },
        async write(chunk) {
          await catchUp();
          let done = 0;
          while (done < chunk.byteLength) {
            const { bytesWritten } = await fh.write(chunk, done, chunk.byteLength - done);
            done += bytesWritten;
          }
          hasher?.update(chunk);
          offset += chunk.byteLength;
        },
        async reset() {
          await fh.truncate(0);
          offset = 0;
          unhashed = 0;
          hasher = check.sha256 ? nodeSha256() : null;
          validator = null;
          await rm(etagName(part), { force: true });
        },
        async setValidator(v) {
          validator = v;
          if (v === null) await rm(etagName(part), { force: true });
          else await writeFile(etagName(part), v);
        },
        async commit() {
          await fh.sync().catch(() => undefined);
          await close();
          const got = (await sizeOf(part)) ?? 0;
          if (expectedSize !== null && got !== expectedSize) {
            await discard();
            throw sizeError(key, expectedSize, got);
          }
          if (check.sha256 && hasher) {
            await catchUp();
            const hex = hasher.hex();
            if (hex !== check.sha256) {
              await discard();
              throw hashError(key, check.sha256, hex);
            }
          }
          await rename(part, full);
          await rm(etagName(part), { force: true });
          return { stored: true } as const;
        },
        async abort(keepPartial) {
          await close();
          if (!keepPartial || offset === 0) await discard();
        },
      };
    },
    async delete(key) {
      await rm(pathOf(key), { force: true });
    },
    async getInfo(key) {
      try {
        return infoFromJson(JSON.parse(await readFile(infoPath(key), 'utf8')));
      } catch {
        return null;
      }
    },
    async putInfo(origin, info: RepoInfo) {
      const p = infoPath({ origin, repo: info.repo, revision: info.revision });
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
          else if (s.isFile() && rel.length >= 4 && !/\.piggyback-part(-etag)?$/.test(n)) {
            const [origin, owner, name, rev, ...sub] = rel;
            out.push({
              origin: decodeURIComponent(origin),
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
        for (const top of [filesRoot, infoRoot]) {
          const origins = await readdir(top).catch(() => [] as string[]);
          for (const o of origins) await rm(join(top, o, ...parts), { recursive: true, force: true });
        }
        // NOTE: the layout before origins were keys, never read any more.
        await rm(join(root, 'files', ...parts), { recursive: true, force: true });
        await rm(join(root, 'info', ...parts), { recursive: true, force: true });
      } else {
        for (const d of [join(root, 'v2'), join(root, 'files'), join(root, 'info')])
          await rm(d, { recursive: true, force: true });
      }
      return freed;
    },
  };
}
