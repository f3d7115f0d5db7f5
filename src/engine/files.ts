// Where model files come from: a FileSource reads named files of one model folder (in memory, over
// HTTP with range requests, or — in source-node.ts — from disk), with random access for safetensors.
// Must never import Node APIs (the browser bundles this file) and never read a whole large file when
// a range will do.

import { EngineError } from './errors';
import { bufferReader, type RandomAccessReader } from './safetensors';

export type { RandomAccessReader } from './safetensors';

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
function withTextAndJson(base: Omit<FileSource, 'readText' | 'readJson'>): FileSource {
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
    openRandomAccess: async (path) => bufferReader(get(path)),
  });
}

export interface UrlSourceOptions {
  /** injected for tests and for hosts with their own fetch; default globalThis.fetch */
  fetch?: typeof fetch;
  headers?: Record<string, string>;
}

/**
 * Files under a base URL (`${baseUrl}/${path}`), e.g. a Hugging Face `resolve/<rev>` URL or the
 * app's own static folder. Safetensors are read with HTTP range requests; a server that ignores
 * `Range` (200 instead of 206) is tolerated by keeping that one response in memory.
 */
export function urlSource(baseUrl: string, opts: UrlSourceOptions = {}): FileSource {
  const doFetch =
    opts.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init));
  const base = baseUrl.replace(/\/+$/, '');
  const url = (path: string): string => `${base}/${path.split('/').map(encodeURIComponent).join('/')}`;
  const get = async (path: string, headers: Record<string, string> = {}): Promise<Response> => {
    let res: Response;
    try {
      res = await doFetch(url(path), { headers: { ...opts.headers, ...headers } });
    } catch (e) {
      throw new EngineError('fetch_failed', `${url(path)}: ${String(e)}`, { file: path, url: url(path) });
    }
    if (res.status === 404) throw missingFile(base, path);
    if (!res.ok) {
      throw new EngineError('fetch_failed', `${url(path)}: HTTP ${res.status}`, {
        file: path,
        url: url(path),
        status: res.status,
      });
    }
    return res;
  };

  return withTextAndJson({
    id: base,
    async has(path) {
      let res: Response;
      try {
        res = await doFetch(url(path), { method: 'HEAD', headers: opts.headers });
      } catch (e) {
        throw new EngineError('fetch_failed', `${url(path)}: ${String(e)}`, { file: path, url: url(path) });
      }
      if (res.ok) return true;
      if (res.status === 404) return false;
      throw new EngineError('fetch_failed', `${url(path)}: HTTP ${res.status}`, {
        file: path,
        status: res.status,
      });
    },
    readBytes: async (path) => new Uint8Array(await (await get(path)).arrayBuffer()),
    async openRandomAccess(path) {
      const probe = await get(path, { Range: 'bytes=0-0' });
      if (probe.status !== 206) return bufferReader(new Uint8Array(await probe.arrayBuffer()));
      const total = /\/(\d+)\s*$/.exec(probe.headers.get('Content-Range') ?? '');
      await probe.arrayBuffer().catch(() => undefined);
      if (!total) {
        throw new EngineError('fetch_failed', `${url(path)}: range response without a total size`, {
          file: path,
        });
      }
      const size = Number(total[1]);
      return {
        size,
        async read(offset, length) {
          if (offset < 0 || length < 0 || offset + length > size) {
            throw new EngineError(
              'truncated_file',
              `${path}: read of ${length} bytes at ${offset} runs past ${size}`,
              {
                file: path,
                offset,
                length,
                size,
              },
            );
          }
          if (length === 0) return new Uint8Array(0);
          const res = await get(path, { Range: `bytes=${offset}-${offset + length - 1}` });
          const bytes = new Uint8Array(await res.arrayBuffer());
          // NOTE: a 200 here means the server dropped the Range header; take our slice of the whole body.
          const slice = res.status === 206 ? bytes : bytes.subarray(offset, offset + length);
          if (slice.byteLength !== length) {
            throw new EngineError(
              'truncated_file',
              `${path}: asked for ${length} bytes, got ${slice.byteLength}`,
              {
                file: path,
                expected: length,
                got: slice.byteLength,
              },
            );
          }
          return slice;
        },
      };
    },
  });
}

export { loadModel, type LoadedModel } from './weights';
