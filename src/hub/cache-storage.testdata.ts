// Cache Storage as the browser has it, in memory (Node has no `caches`), for the download-cache and
// source tests. Test-only: must never be imported by code that ships.
import type { CacheLike, CacheStorageLike } from './download-cache';

/** Cache Storage as the browser has it, in memory. */
export function fakeCacheStorage(): CacheStorageLike & { names: () => string[] } {
  const stores = new Map<string, Map<string, Response>>();
  return {
    names: () => [...stores.keys()],
    async open(name) {
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
