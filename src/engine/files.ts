// Where model files come from: the FileSource interface (named files of one model folder, with random
// access for safetensors), the shared missing-file / JSON helpers, the size limits of files read as
// text (every source's readText / readJson keeps them), and the in-memory source. The
// other sources live in src/hub/ (HTTP: url-files.ts, disk: folder-files-node.ts, picked files:
// browser-files.ts, Hub repos: hub-files.ts).
// Must never import Node APIs (the browser bundles this file), never import src/hub/ (hub builds on
// engine, not the other way), and never read a whole large file when a range will do.

import { EngineError } from './errors';
import { bufferReader, type RandomAccessReader } from './safetensors';

/** One model (or adapter) folder, addressed by relative paths like `config.json`. */
export interface FileSource {
  /** stable label for messages and caches, e.g. the folder path or base URL */
  readonly id: string;
  has(path: string): Promise<boolean>;
  readBytes(path: string): Promise<Uint8Array>;
  /** UTF-8 text; `file_too_large` past `textFileLimit(path)` */
  readText(path: string): Promise<string>;
  /** parsed JSON; `file_too_large` past `textFileLimit(path)`, `bad_json` when it does not parse */
  readJson(path: string): Promise<unknown>;
  openRandomAccess(path: string): Promise<RandomAccessReader>;
}

export function missingFile(source: string, path: string): EngineError {
  return new EngineError('missing_file', `${source}: no file ${path}`, { file: path, source });
}

/** Parses JSON text, turning a syntax error into `bad_json` naming the file. */
export function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new EngineError('bad_json', `${file}: not valid JSON (${String(e)})`, { file });
  }
}

const MiB = 1024 * 1024;

/**
 * The most bytes readText / readJson take from one file, so a hostile or broken source cannot make a
 * load read hundreds of MB into one string: a tokenizer.json holds the whole vocabulary and merges
 * (Llama 3's 128k tokens: 9 MB; the largest known a few tens of MB), so 64 MiB; every other JSON or
 * text file of a model folder (config, generation config, tokenizer config, chat template, adapter
 * config, shard index) is kilobytes, so 8 MiB is generous.
 */
export const TOKENIZER_JSON_LIMIT = 64 * MiB;
export const TEXT_FILE_LIMIT = 8 * MiB;

/** The limit for `path` (by its file name). */
export function textFileLimit(path: string): number {
  return path.split('/').pop() === 'tokenizer.json' ? TOKENIZER_JSON_LIMIT : TEXT_FILE_LIMIT;
}

/** Files read as text (JSON, templates): the ones the limits apply to when downloaded. */
export function isTextFile(path: string): boolean {
  return /\.(json|jinja|txt)$/.test(path);
}

const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

/** `file_too_large` naming the file, its size (when known) and the limit. */
export function tooLargeError(source: string, path: string, size: number | null): EngineError {
  const limit = textFileLimit(path);
  const what = path.split('/').pop() === 'tokenizer.json' ? 'tokenizer.json' : 'a JSON or text file';
  return new EngineError(
    'file_too_large',
    `${source}/${path} is ${size === null ? 'over' : `${mib(size)}, over`} the ${mib(limit)} limit for ${what}: no model file of this kind is that big, so this is not the file it should be (check the source)`,
    { file: path, source, size, limit },
  );
}

/** Refuses a text file of `size` bytes over its limit. */
export function checkTextSize(source: string, path: string, size: number): void {
  if (size > textFileLimit(path)) throw tooLargeError(source, path, size);
}

/** UTF-8 text of a file's bytes, refused when over its limit. */
export function decodeText(bytes: Uint8Array, source: string, path: string): string {
  checkTextSize(source, path, bytes.byteLength);
  return new TextDecoder().decode(bytes);
}

/** Builds readText/readJson on top of readBytes (fine where the bytes are in memory already). */
export function withTextAndJson(base: Omit<FileSource, 'readText' | 'readJson'>): FileSource {
  const readText = async (path: string): Promise<string> =>
    decodeText(await base.readBytes(path), base.id, path);
  return {
    ...base,
    readText,
    readJson: async (path) => parseJsonText(await readText(path), `${base.id}/${path}`),
  };
}

/** An in-memory folder (tests, the embedded demo, files dropped into the browser). */
export function memorySource(
  files: Map<string, Uint8Array> | Record<string, Uint8Array | string>,
  id = 'memory',
): FileSource {
  const map = new Map<string, Uint8Array>();
  const entries = files instanceof Map ? files.entries() : Object.entries(files);
  for (const [k, v] of entries) map.set(k, typeof v === 'string' ? new TextEncoder().encode(v) : v);
  const get = (path: string): Uint8Array => {
    const b = map.get(path);
    if (!b) throw missingFile(id, path);
    return b;
  };
  return withTextAndJson({
    id,
    has: async (path) => map.has(path),
    readBytes: async (path) => get(path),
    openRandomAccess: async (path) => bufferReader(get(path), path),
  });
}
