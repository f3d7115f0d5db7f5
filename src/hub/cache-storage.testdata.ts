// Cache Storage as the browser has it, in memory (Node has no `caches`), for the download-cache and
// source tests. Test-only: must never be imported by code that ships.
import type { CacheLike, CacheStorageLike } from './download-cache';

/** How the fake refuses, like a private window: `put` rejecting (all, or for some URLs), `open` rejecting. */
export interface FakeCacheFaults {
  /** the error `put` rejects with for this URL (null: stored) */
  putError?: (url: string) => Error | null;
  /** the error `open` rejects with */
  openError?: Error;
}

/** Chromium's off-the-record `put` of a large body: "Failed to execute 'put' on 'Cache': …". */
export const internalPutError = () =>
  new DOMException("Failed to execute 'put' on 'Cache': Unexpected internal error.", 'UnknownError');
export const quotaPutError = () =>
  new DOMException("Failed to execute 'put' on 'Cache': Quota exceeded.", 'QuotaExceededError');

/** Cache Storage as the browser has it, in memory. */
export function fakeCacheStorage(
  faults: FakeCacheFaults = {},
): CacheStorageLike & { names: () => string[]; puts: string[] } {
  const stores = new Map<string, Map<string, Response>>();
  const puts: string[] = [];
  return {
    names: () => [...stores.keys()],
    puts,
    async open(name) {
      if (faults.openError) throw faults.openError;
      let m = stores.get(name);
      if (!m) {
        m = new Map();
        stores.set(name, m);
      }
      const store = m;
      const cache: CacheLike = {
        async match(url) {
          return store.get(url)?.clone();
        },
        async put(url, res) {
          puts.push(url);
          const refused = faults.putError?.(url);
          if (refused) {
            // NOTE: Chromium reads the body before it fails.
            await res.arrayBuffer();
            throw refused;
          }
          // NOTE: like the browser, the body is consumed and stored.
          store.set(url, new Response(await res.arrayBuffer(), { headers: res.headers }));
        },
        async delete(url) {
          return store.delete(url);
        },
        async keys() {
          return [...store.keys()].map((url) => ({ url }));
        },
      };
      return cache;
    },
    async delete(name) {
      return stores.delete(name);
    },
  };
}
