// The CLI's graph cache: built decoder graphs kept as files (`<cache>/graphs/<sha256 of the key>/`:
// model.onnx, its page-aligned external data, meta.json), so a later run opens its session from the
// path (ORT maps the weights) instead of building the graph again. Also how the CLI identifies a
// model source's bytes for the key. Node-only. Must never leave a half-written entry where a reader
// looks (build in a temp folder, then rename), never trust an entry it has not checked, and never touch
// anything outside its folder.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FileSource } from '../engine/files';
import type { ExternalDataSink } from '../engine/graph/builder';
import type { DecoderGraphFiles } from '../engine/graph/decoder';
import {
  GRAPH_FORMAT_VERSION,
  type GraphStore,
  type PackedGraph,
  type StoredGraph,
} from '../engine/graph-store';
import { loadOrtNode } from '../engine/session';
import { errorMessage } from '../common/errors';
import { formatBytes } from '../common/format';
import { defaultDownloadCacheDir } from '../hub/download-cache-node';

const MODEL_FILE = 'model.onnx';
const META_FILE = 'meta.json';
/** ORT's optimized model with its prepacked weights, in a folder of the entry (session.ts saves it) */
const PACKED_DIR = 'packed';
const PACKED_META = 'packed.json';
const PACKED_FORMAT = 1;
/** a temp folder untouched this long is a killed build's (a 0.5B pair builds in under a minute) */
const STALE_TEMP_MS = 6 * 3600 * 1000;
/**
 * What the graph cache may hold before the least recently used entries go (`--graph-cache-max`). An
 * entry is the graph plus its prepacked copy (about twice the graph again: ORT saves the weights and
 * their packed form): ~6 GB for a 0.5B LoRA pair's one session, ~12 GB for a base + full-finetune pair.
 */
export const DEFAULT_GRAPH_CACHE_MAX_BYTES = 16 * 1024 ** 3;

interface Meta {
  format: number;
  key: string;
  modelBytes: number;
  modelSha256: string;
  files: { path: string; size: number }[];
  io: StoredGraph['io'];
}

/** `graphs/` in the CLI's one cache folder (PIGGYBACK_CACHE, else XDG, else ~/.cache/piggyback). */
export function defaultGraphCacheDir(env: Record<string, string | undefined> = process.env): string {
  return path.join(defaultDownloadCacheDir(env), 'graphs');
}

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** An external data file name as the builder writes it: one plain name inside the entry. */
function safeName(name: string): string {
  if (!/^[\w.-]+$/.test(name) || name.startsWith('.') || name === META_FILE || name === MODEL_FILE)
    throw new Error(`graph cache: refusing external data file name "${name}"`);
  return name;
}

/** A sink writing each tensor at its offset of its file in `dir` (files opened on first write). */
function fileSink(dir: string) {
  const open = new Map<string, fs.FileHandle>();
  const sink: ExternalDataSink = {
    async write(name, offset, data) {
      let fh = open.get(name);
      if (!fh) {
        fh = await fs.open(path.join(dir, safeName(name)), 'w');
        open.set(name, fh);
      }
      let done = 0;
      while (done < data.byteLength) {
        const { bytesWritten } = await fh.write(data, done, data.byteLength - done, offset + done);
        done += bytesWritten;
      }
    },
  };
  return {
    sink,
    /** sets each file to its declared size (the tail past the last tensor, or a file never written) */
    async close(files: { path: string; size: number }[]): Promise<void> {
      for (const f of files) {
        const fh = open.get(f.path) ?? (await fs.open(path.join(dir, safeName(f.path)), 'w'));
        open.set(f.path, fh);
        await fh.truncate(f.size);
      }
      await closeAll();
    },
    closeAll,
  };
  async function closeAll(): Promise<void> {
    const handles = [...open.values()];
    open.clear();
    for (const fh of handles) await fh.close().catch(() => undefined);
  }
}

export interface FileGraphStoreOptions {
  /** progress lines (default: none) */
  log?: (line: string) => void;
  /**
   * After each build or open, the least recently used entries are removed until the cache holds at most this
   * many bytes (default DEFAULT_GRAPH_CACHE_MAX_BYTES; Infinity keeps everything). Never an entry this
   * store has opened or built (both graphs of a pair stay), even when those alone are over it.
   */
  maxBytes?: number;
  /**
   * Keep ORT's prepacked copy of each graph beside it (default true): the first open on a host saves
   * it (about the graph's size again on disk), later opens map it instead of packing again.
   */
  packed?: boolean;
  /** what the prepacked copy was made for (default: this CPU and onnxruntime-node build); tests */
  packedHost?: () => Promise<string>;
}

/** One entry on disk, for pruning: its folder, bytes and when it was last opened or built (ms). */
export interface GraphCacheEntry {
  dir: string;
  bytes: number;
  usedMs: number;
}

/**
 * Graphs as files under `dir`. An entry is used only when meta.json parses, names this format and this
 * exact key, model.onnx has its recorded size and sha256, and every external file its recorded size;
 * anything else is a damaged entry, removed and built again.
 */
export class FileGraphStore implements GraphStore {
  /** graphs built by this store (misses and rebuilds) */
  builds = 0;
  /** graphs opened from an intact entry without building */
  opens = 0;
  /** entries removed to stay under `maxBytes` */
  evictions = 0;
  /** prepacked copies opened / saved by sessions of this store */
  packedOpens = 0;
  packedSaves = 0;
  readonly maxBytes: number;
  private readonly packed: boolean;
  private readonly packedHost: () => Promise<string>;
  private readonly log: (line: string) => void;
  /** entry folders this store opened or built: never pruned by it */
  private readonly inUse = new Set<string>();

  constructor(
    readonly dir: string,
    opts: FileGraphStoreOptions = {},
  ) {
    this.log = opts.log ?? (() => undefined);
    this.maxBytes = opts.maxBytes ?? DEFAULT_GRAPH_CACHE_MAX_BYTES;
    this.packed = opts.packed ?? true;
    this.packedHost = opts.packedHost ?? hostIdentity;
    if (!(this.maxBytes >= 0))
      throw new Error(`graph cache: the size limit must be ≥ 0 bytes, not ${opts.maxBytes}`);
  }

  /** The entry folder of a key. */
  entryDir(key: string): string {
    return path.join(this.dir, sha256(key).slice(0, 40));
  }

  async graph(
    key: string,
    build: (sink: ExternalDataSink) => Promise<DecoderGraphFiles>,
  ): Promise<StoredGraph> {
    const entry = this.entryDir(key);
    const found = await this.check(entry, key);
    if (found.ok) {
      this.opens++;
      this.inUse.add(entry);
      await touch(entry);
      this.log(`opening from the graph cache (${formatBytes(found.graph.graphBytes)}, ${entry})`);
      // NOTE: an open adds nothing, but the limit may have been lowered since (--graph-cache-max)
      await this.prune();
      return this.withPacked(entry, found.graph);
    }
    if (found.why !== 'missing') {
      this.log(`graph cache entry damaged (${found.why}): removing it and building again`);
      await fs.rm(entry, { recursive: true, force: true });
    }
    this.log(`building the graph file (${entry})`);
    await fs.mkdir(this.dir, { recursive: true });
    await this.removeStale(this.dir, `.tmp-${path.basename(entry)}-`);
    const tmp = await fs.mkdtemp(path.join(this.dir, `.tmp-${path.basename(entry)}-`));
    const files = fileSink(tmp);
    try {
      const built = await build(files.sink);
      await files.close(built.externalFiles);
      await fs.writeFile(path.join(tmp, MODEL_FILE), built.model);
      const meta: Meta = {
        format: GRAPH_FORMAT_VERSION,
        key,
        modelBytes: built.model.byteLength,
        modelSha256: sha256(built.model),
        files: built.externalFiles.map((f) => ({ path: safeName(f.path), size: f.size })),
        io: built.io,
      };
      // NOTE: meta.json last: an entry without it reads as damaged, never as whole
      await fs.writeFile(path.join(tmp, META_FILE), JSON.stringify(meta));
      try {
        await fs.rename(tmp, entry);
      } catch (e) {
        // another process finished the same entry first: keep theirs if it is intact
        if (!(await this.check(entry, key)).ok) throw e;
        await fs.rm(tmp, { recursive: true, force: true });
      }
    } catch (e) {
      await files.closeAll();
      await fs.rm(tmp, { recursive: true, force: true });
      throw e;
    }
    this.builds++;
    this.inUse.add(entry);
    const again = await this.check(entry, key);
    if (!again.ok) throw new Error(`graph cache: the entry just built is unreadable (${again.why})`);
    await this.prune();
    return this.withPacked(entry, { ...again.graph, built: true });
  }

  /** The graph with its prepacked copy: the intact one of this host and build, or where to save one. */
  private async withPacked(entry: string, graph: StoredGraph): Promise<StoredGraph> {
    if (!this.packed) return graph;
    const host = await this.packedHost();
    const dir = path.join(entry, PACKED_DIR);
    await this.removeStale(entry, '.packing-');
    const intact = await checkPacked(dir, host);
    if (!intact.ok && intact.why !== 'missing') {
      this.log(`prepacked graph not used (${intact.why}): packing again and saving it`);
      await fs.rm(dir, { recursive: true, force: true });
    }
    let tmp: string | null = null;
    const packed: PackedGraph = {
      modelPath: intact.ok ? path.join(dir, MODEL_FILE) : null,
      prepare: async () => {
        tmp = await fs.mkdtemp(path.join(entry, '.packing-'));
        return path.join(tmp, MODEL_FILE);
      },
      settle: async (saved) => {
        if (packed.modelPath && !saved) {
          // NOTE: the intact-looking copy did not open: gone, so the next open packs and saves again
          this.log('the prepacked graph did not open: removed, opening the graph itself');
          await fs.rm(dir, { recursive: true, force: true });
          return;
        }
        if (!tmp) return;
        const from = tmp;
        tmp = null;
        if (!saved) {
          await fs.rm(from, { recursive: true, force: true });
          this.log('saving the prepacked graph failed: opened the graph itself');
          return;
        }
        try {
          await writePackedMeta(from, host);
          await fs.rename(from, dir);
          this.packedSaves++;
          this.log(`saved the prepacked graph for this host (${dir})`);
        } catch {
          // NOTE: another process saved one first (or the disk is full): keep theirs, drop this one
          await fs.rm(from, { recursive: true, force: true });
        }
      },
    };
    if (packed.modelPath) {
      this.packedOpens++;
      this.log(`opening the prepacked graph (${dir})`);
    }
    return { ...graph, packed };
  }

  /** The entries on disk (temp folders are not entries), least recently used first. */
  async entries(): Promise<GraphCacheEntry[]> {
    const out: GraphCacheEntry[] = [];
    for (const d of await fs.readdir(this.dir, { withFileTypes: true }).catch(() => [])) {
      if (!d.isDirectory() || d.name.startsWith('.')) continue;
      const dir = path.join(this.dir, d.name);
      // NOTE: meta.json's mtime is the last use (touched on every open); the folder's when it has none
      const st =
        (await fs.stat(path.join(dir, META_FILE)).catch(() => null)) ??
        (await fs.stat(dir).catch(() => null));
      if (st) out.push({ dir, bytes: await folderBytes(dir), usedMs: st.mtimeMs });
    }
    return out.sort((a, b) => a.usedMs - b.usedMs || a.dir.localeCompare(b.dir));
  }

  /**
   * Removes the least recently used entries until the cache holds at most `maxBytes`, never one this
   * store opened or built. Another process that still has a removed entry open keeps reading it (the
   * files go when it closes them); its next run builds the graph again.
   */
  async prune(): Promise<void> {
    if (this.maxBytes === Infinity) return;
    const entries = await this.entries();
    let total = entries.reduce((a, e) => a + e.bytes, 0);
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      if (this.inUse.has(e.dir)) continue;
      await fs.rm(e.dir, { recursive: true, force: true });
      total -= e.bytes;
      this.evictions++;
      const ago = Math.max(0, Math.round((Date.now() - e.usedMs) / 3600_000));
      this.log(
        `graph cache over ${formatBytes(this.maxBytes)}: removed the least recently used entry ` +
          `(${formatBytes(e.bytes)}, last used ${ago} h ago, ${e.dir})`,
      );
    }
    if (total > this.maxBytes)
      this.log(
        `graph cache holds ${formatBytes(total)}, over its ${formatBytes(this.maxBytes)}: ` +
          `the graphs of this run alone are that large (--graph-cache-max sets the limit)`,
      );
  }

  /**
   * Temp folders of this entry left by a build that was killed (a failing one removes its own): those
   * older than STALE_TEMP_MS, so a build still running in another process keeps its folder.
   */
  private async removeStale(inDir: string, prefix: string): Promise<void> {
    for (const name of await fs.readdir(inDir).catch(() => [] as string[])) {
      if (!name.startsWith(prefix)) continue;
      const full = path.join(inDir, name);
      const st = await fs.stat(full).catch(() => null);
      if (st && Date.now() - st.mtimeMs > STALE_TEMP_MS) await fs.rm(full, { recursive: true, force: true });
    }
  }

  /** Whether `entry` holds an intact graph for `key`, and why not. */
  private async check(
    entry: string,
    key: string,
  ): Promise<{ ok: true; graph: StoredGraph } | { ok: false; why: string }> {
    let text: string;
    try {
      text = await fs.readFile(path.join(entry, META_FILE), 'utf8');
    } catch {
      try {
        await fs.access(entry);
        return { ok: false, why: `no ${META_FILE}` };
      } catch {
        return { ok: false, why: 'missing' };
      }
    }
    let meta: Meta;
    try {
      meta = JSON.parse(text) as Meta;
    } catch (e) {
      return { ok: false, why: `${META_FILE} does not parse: ${errorMessage(e)}` };
    }
    if (meta.format !== GRAPH_FORMAT_VERSION) return { ok: false, why: `format ${meta.format}` };
    if (meta.key !== key) return { ok: false, why: 'another key' };
    if (!Array.isArray(meta.files) || !meta.io) return { ok: false, why: `${META_FILE} is incomplete` };
    let model: Buffer;
    try {
      model = await fs.readFile(path.join(entry, MODEL_FILE));
    } catch {
      return { ok: false, why: `no ${MODEL_FILE}` };
    }
    if (model.byteLength !== meta.modelBytes || sha256(model) !== meta.modelSha256)
      return { ok: false, why: `${MODEL_FILE} is not the one built` };
    let bytes = model.byteLength;
    for (const f of meta.files) {
      let size: number;
      try {
        size = (await fs.stat(path.join(entry, safeName(f.path)))).size;
      } catch {
        return { ok: false, why: `no ${f.path}` };
      }
      if (size !== f.size) return { ok: false, why: `${f.path} is ${size} bytes, ${f.size} written` };
      bytes += size;
    }
    return {
      ok: true,
      graph: { modelPath: path.join(entry, MODEL_FILE), graphBytes: bytes, io: meta.io, built: false },
    };
  }
}

/**
 * What a prepacked graph was made for: the CPU (model and feature flags: MLAS packs per instruction
 * set), the architecture and the onnxruntime-node build.
 */
async function hostIdentity(): Promise<string> {
  const ort = await loadOrtNode();
  const versions = (ort.env as { versions?: Record<string, string> }).versions ?? {};
  let cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  try {
    const info = await fs.readFile('/proc/cpuinfo', 'utf8');
    const first = info.split(/\n\n/)[0];
    const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(first)?.[1] ?? '';
    cpu = `${field('model name')}|${sha256(field('flags')).slice(0, 16)}`;
  } catch {
    // NOTE: not Linux: the model name alone
  }
  return `${process.platform}|${process.arch}|${cpu}|onnxruntime-node ${versions.node ?? '?'}`;
}

interface PackedMeta {
  format: number;
  host: string;
  modelBytes: number;
  modelSha256: string;
  files: { path: string; size: number }[];
}

/** Records what was saved in `dir` (the model's size and sha256, every other file's size). */
async function writePackedMeta(dir: string, host: string): Promise<void> {
  const model = await fs.readFile(path.join(dir, MODEL_FILE));
  const files: PackedMeta['files'] = [];
  for (const name of (await fs.readdir(dir)).sort())
    if (name !== MODEL_FILE && name !== PACKED_META)
      files.push({ path: name, size: (await fs.stat(path.join(dir, name))).size });
  const meta: PackedMeta = {
    format: PACKED_FORMAT,
    host,
    modelBytes: model.byteLength,
    modelSha256: sha256(model),
    files,
  };
  await fs.writeFile(path.join(dir, PACKED_META), JSON.stringify(meta));
}

/** Whether `dir` holds a whole prepacked graph made for `host`, and why not. */
async function checkPacked(dir: string, host: string): Promise<{ ok: true } | { ok: false; why: string }> {
  let meta: PackedMeta;
  try {
    meta = JSON.parse(await fs.readFile(path.join(dir, PACKED_META), 'utf8')) as PackedMeta;
  } catch (e) {
    const there = await fs.access(dir).then(
      () => true,
      () => false,
    );
    return { ok: false, why: there ? `${PACKED_META} unreadable: ${errorMessage(e)}` : 'missing' };
  }
  if (meta.format !== PACKED_FORMAT || !Array.isArray(meta.files))
    return { ok: false, why: `format ${meta.format}` };
  if (meta.host !== host) return { ok: false, why: 'made on another CPU or onnxruntime build' };
  const model = await fs.readFile(path.join(dir, MODEL_FILE)).catch(() => null);
  if (!model || model.byteLength !== meta.modelBytes || sha256(model) !== meta.modelSha256)
    return { ok: false, why: `${MODEL_FILE} is not the one saved` };
  for (const f of meta.files) {
    const size = await fs
      .stat(path.join(dir, safeName(f.path)))
      .then((s) => s.size)
      .catch(() => -1);
    if (size !== f.size) return { ok: false, why: `${f.path} is ${size} bytes, ${f.size} saved` };
  }
  return { ok: true };
}

/** Marks an entry used now (its meta.json's mtime); a read-only cache just is not marked. */
async function touch(entry: string): Promise<void> {
  const now = new Date();
  await fs.utimes(path.join(entry, META_FILE), now, now).catch(() => undefined);
}

/** The bytes of the files in a folder and below. */
async function folderBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) bytes += await folderBytes(full);
    else if (e.isFile()) bytes += (await fs.stat(full).catch(() => ({ size: 0 }))).size;
  }
  return bytes;
}

/** sha256 of a file's bytes, streamed. */
async function fileSha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * What a folder's files are, for the graph key: each file's name, size and mtime (cheap: a model's
 * weights are not read), or, for an adapter folder (adapter_config.json), each file's sha256 (tens of
 * MB). Sub-folders are not part of a model.
 */
export async function folderIdentity(dir: string): Promise<string> {
  const names = (await fs.readdir(dir, { withFileTypes: true }))
    .filter((d) => d.isFile())
    .map((d) => d.name)
    .sort();
  const adapter = names.includes('adapter_config.json');
  const parts: string[] = [];
  for (const n of names) {
    const full = path.join(dir, n);
    if (adapter) parts.push(`${n}:sha256:${await fileSha256(full)}`);
    else {
      const st = await fs.stat(full);
      parts.push(`${n}:${st.size}:${Math.round(st.mtimeMs)}`);
    }
  }
  return `${path.resolve(dir)}|${parts.join('|')}`;
}

/**
 * The identity of a resolved model source's bytes for the graph key, or null when there is none that
 * is cheap and safe (a plain HTTP folder: the graph is built in memory then). A folder (demo, local):
 * `folderIdentity`; a Hub repo: its resolved commit and each file's size and LFS sha256 (the download
 * cache checks the bytes against them).
 */
export async function sourceIdentity(kind: string, files: FileSource): Promise<string | null> {
  if (kind === 'demo' || kind === 'local') return folderIdentity(files.id);
  const info = (files as { info?: { commit: string | null; files: readonly unknown[] } }).info;
  if (info && typeof info.commit === 'string' && info.commit)
    return `hub:${files.id}@${info.commit}|${JSON.stringify(info.files)}`;
  return null;
}

/** Removes a graph cache folder (`cache clear`); returns the bytes it held. */
export async function clearGraphCache(dir: string): Promise<number> {
  const bytes = await folderBytes(dir);
  await fs.rm(dir, { recursive: true, force: true });
  return bytes;
}
