// The Hugging Face token a user pasted: held in memory for this page / worker / process, and — only
// if the user asks — in sessionStorage (gone when the tab closes). The Hub client reads it through a
// getter, so a token pasted after a failed load is used by the retry.
// Must never write the token to localStorage, a spec, a link, a log, a cache key or an error message,
// and never touch a DOM global itself (the caller hands in the Storage it chose).

/** The part of the Web Storage API this module uses (sessionStorage, or a test double). */
export type TokenStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

const STORAGE_KEY = 'piggyback.hf-token';

/** Hub tokens are `hf_` + letters and digits; anything else is most likely a paste mistake. */
export function looksLikeHubToken(token: string): boolean {
  return /^hf_[A-Za-z0-9]{20,}$/.test(token.trim());
}

export class TokenHolder {
  private value: string | null = null;
  private storage: TokenStorage | null = null;

  /** Sets (or with null / '' clears) the token; with `storage` it is also kept there for the session. */
  set(token: string | null, storage?: TokenStorage | null): void {
    const t = token?.trim() || null;
    this.value = t;
    if (storage !== undefined) this.storage = storage;
    if (this.storage) {
      try {
        if (t && storage !== null) this.storage.setItem(STORAGE_KEY, t);
        else this.storage.removeItem(STORAGE_KEY);
      } catch {
        // NOTE: storage may be full or disabled (private mode); memory still holds the token.
      }
    }
  }

  get(): string | null {
    return this.value;
  }

  /** Picks up a token kept in `storage` by an earlier page of this tab; true when there was one. */
  restore(storage: TokenStorage): boolean {
    let t: string | null = null;
    try {
      t = storage.getItem(STORAGE_KEY);
    } catch {
      t = null;
    }
    if (!t) return false;
    this.value = t;
    this.storage = storage;
    return true;
  }

  /** Forgets the token everywhere it was kept. */
  clear(storage?: TokenStorage): void {
    this.value = null;
    for (const s of [storage, this.storage]) {
      try {
        s?.removeItem(STORAGE_KEY);
      } catch {
        // nothing to remove
      }
    }
    this.storage = null;
  }

  /** For messages: whether a token is set, never the token. */
  describe(): string {
    return this.value ? 'a token is set' : 'no token';
  }

  /** Never serialised: JSON.stringify of a holder gives no token. */
  toJSON(): { hasToken: boolean } {
    return { hasToken: this.value !== null };
  }
}

/** The one token of this JavaScript realm (the engine worker's, or the CLI process's). */
export const hubToken = new TokenHolder();
