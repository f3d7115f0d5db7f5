// What the UI thread keeps of the Hub settings between pages of one tab: the Hugging Face token only
// when the user ticks "remember for this tab" (sessionStorage, gone with the tab), and the Hub endpoint
// the panel chose. The token's home is the worker's memory; this module only hands it over.
// Must never write the token to localStorage, a spec, a link, a log or the store, and never read a
// setting from a URL (a link must not be able to redirect the token to another host).

/** The part of the Web Storage API used (sessionStorage, or a test double). */
export type SettingsStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

const TOKEN_KEY = 'piggyback.hf-token';
const ENDPOINT_KEY = 'piggyback.hub-endpoint';

function tabStorage(): SettingsStorage | null {
  try {
    return typeof sessionStorage === 'undefined' ? null : sessionStorage;
  } catch {
    return null; // NOTE: storage can be disabled (privacy settings); memory still works
  }
}

function read(storage: SettingsStorage | null, key: string): string | null {
  try {
    return storage?.getItem(key) ?? null;
  } catch {
    return null;
  }
}

function write(storage: SettingsStorage | null, key: string, value: string | null): void {
  try {
    if (value) storage?.setItem(key, value);
    else storage?.removeItem(key);
  } catch {
    // full or disabled storage: the setting lasts for this page only
  }
}

/** Hub tokens are `hf_` + letters and digits; anything else is most likely a paste mistake. */
export function looksLikeToken(token: string): boolean {
  return /^hf_[A-Za-z0-9]{20,}$/.test(token.trim());
}

/** The token kept for this tab, if the user asked for that. */
export function rememberedToken(storage = tabStorage()): string | null {
  return read(storage, TOKEN_KEY);
}

/** Keeps the token for this tab (remember) or forgets any kept copy. */
export function keepToken(token: string | null, remember: boolean, storage = tabStorage()): void {
  write(storage, TOKEN_KEY, remember ? token?.trim() || null : null);
}

/** A Hub endpoint typed by the user: an http(s) origin (path allowed for a proxy), or null when empty. */
export function normaliseEndpoint(text: string): string | null | Error {
  const t = text.trim();
  if (!t) return null;
  let u: URL;
  try {
    u = new URL(t);
  } catch {
    return new Error(`"${t}" is not a URL: write e.g. https://huggingface.co`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    return new Error('the Hub endpoint must be an http(s) URL');
  if (u.username || u.password || u.search || u.hash)
    return new Error('the Hub endpoint may not carry credentials, a query or a fragment');
  return `${u.origin}${u.pathname}`.replace(/\/+$/, '');
}

export function rememberedEndpoint(storage = tabStorage()): string | null {
  return read(storage, ENDPOINT_KEY);
}

export function keepEndpoint(endpoint: string | null, storage = tabStorage()): void {
  write(storage, ENDPOINT_KEY, endpoint);
}
