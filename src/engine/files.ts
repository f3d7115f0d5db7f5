// Where model files come from: the FileSource interface (named files of one model folder, with random
// access for safetensors), the shared missing-file / JSON helpers, and the in-memory source. The
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
  readText(path: string): Promise<string>;
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

/** Builds readText/readJson on top of readBytes. */
export function withTextAndJson(base: Omit<FileSource, 'readText' | 'readJson'>): FileSource {
  const readText = async (path: string): Promise<string> =>
    new TextDecoder().decode(await base.readBytes(path));
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
