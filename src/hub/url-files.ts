// FileSource over plain HTTP: files under a base URL (a Hugging Face `resolve/<rev>` URL, the app's
// own static folder, any static server), safetensors read with HTTP range requests.
// Every request runs under the first-byte and idle-body limits (http-timeouts.ts), and text is read
// only up to its file's limit (engine/files.ts).
// Must never send headers it was not given (the caller decides about tokens), never read a whole
// large file when the server honours Range, never read a JSON file past its limit, and never import
// Node APIs or the DOM.

import { EngineError } from '../engine/errors';
import { missingFile, parseJsonText, textFileLimit, tooLargeError, type FileSource } from '../engine/files';
import { bufferReader, checkedReader } from '../engine/safetensors';
import { classifyFetchFailure, fetchWithTimeouts, readCapped, type HttpTimeouts } from './http-timeouts';

export interface UrlSourceOptions {
  /** injected for tests and for hosts with their own fetch; default globalThis.fetch */
  fetch?: typeof fetch;
  headers?: Record<string, string>;
  /** first-byte and idle-body limits (defaults: 30 s, 60 s) */
  timeouts?: HttpTimeouts;
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
  const request = async (path: string, init: RequestInit): Promise<Response> => {
    try {
      return await fetchWithTimeouts(doFetch, url(path), init, opts.timeouts);
    } catch (e) {
      const limit = classifyFetchFailure(e);
      throw new EngineError('fetch_failed', `${url(path)}: ${limit ? limit.message : String(e)}`, {
        file: path,
        url: url(path),
        ...(limit ? { reason: limit.kind } : {}),
      });
    }
  };
  const get = async (path: string, headers: Record<string, string> = {}): Promise<Response> => {
    const res = await request(path, { headers: { ...opts.headers, ...headers } });
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

  const readText = async (path: string): Promise<string> => {
    const bytes = await readCapped(await get(path), textFileLimit(path), (size) =>
      tooLargeError(base, path, size),
    );
    return new TextDecoder().decode(bytes);
  };

  return {
    id: base,
    async has(path) {
      const res = await request(path, { method: 'HEAD', headers: opts.headers });
      if (res.ok) return true;
      if (res.status === 404) return false;
      throw new EngineError('fetch_failed', `${url(path)}: HTTP ${res.status}`, {
        file: path,
        status: res.status,
      });
    },
    readBytes: async (path) => new Uint8Array(await (await get(path)).arrayBuffer()),
    readText,
    readJson: async (path) => parseJsonText(await readText(path), `${base}/${path}`),
    async openRandomAccess(path) {
      const probe = await get(path, { Range: 'bytes=0-0' });
      if (probe.status !== 206) return bufferReader(new Uint8Array(await probe.arrayBuffer()), path);
      const total = /\/(\d+)\s*$/.exec(probe.headers.get('Content-Range') ?? '');
      await probe.arrayBuffer().catch(() => undefined);
      if (!total) {
        throw new EngineError('fetch_failed', `${url(path)}: range response without a total size`, {
          file: path,
        });
      }
      return checkedReader(Number(total[1]), path, async (offset, length) => {
        const res = await get(path, { Range: `bytes=${offset}-${offset + length - 1}` });
        const bytes = new Uint8Array(await res.arrayBuffer());
        // NOTE: a 200 here means the server dropped the Range header; take our slice of the whole body.
        return res.status === 206 ? bytes : bytes.subarray(offset, offset + length);
      });
    },
  };
}
