// The browser's evaluation store: finished rows in IndexedDB (database "piggyback-eval", one record per
// row, indexed by evaluation key), so an evaluation resumes after a cancel or a reload. Rows never
// hold a key (evaluate.ts). It must never touch anything of the DOM but `indexedDB`.
import type { EvalRow, EvalStore } from '../lab/eval/eval-table';
import { rowKey } from '../lab/eval/eval-table';

const DB_NAME = 'piggyback-eval';
const STORE = 'rows';

interface Record_ {
  id: string;
  key: string;
  row: EvalRow;
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
  });
}

export class IdbEvalStore implements EvalStore {
  private db: Promise<IDBDatabase> | null = null;

  constructor(private readonly factory: IDBFactory = globalThis.indexedDB) {}

  /** Whether this environment has IndexedDB at all. */
  static available(): boolean {
    return typeof globalThis.indexedDB !== 'undefined';
  }

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise<IDBDatabase>((resolve, reject) => {
      const r = this.factory.open(DB_NAME, 1);
      r.onupgradeneeded = () => {
        const store = r.result.createObjectStore(STORE, { keyPath: 'id' });
        store.createIndex('key', 'key', { unique: false });
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error ?? new Error('IndexedDB could not be opened'));
      r.onblocked = () => reject(new Error('IndexedDB is blocked by another tab of the lab'));
    }).catch((e: unknown) => {
      this.db = null;
      throw e;
    });
    return this.db;
  }

  async load(key: string): Promise<EvalRow[]> {
    const db = await this.open();
    const tx = db.transaction(STORE, 'readonly');
    const records = await request(tx.objectStore(STORE).index('key').getAll(IDBKeyRange.only(key)));
    return (records as Record_[]).map((r) => r.row);
  }

  async append(key: string, rows: readonly EvalRow[]): Promise<void> {
    const db = await this.open();
    const tx = db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    for (const row of rows) store.put({ id: `${key}\u0001${rowKey(row)}`, key, row } satisfies Record_);
    await done(tx);
  }

  async clear(key: string): Promise<void> {
    const db = await this.open();
    const tx = db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    const ids = await request(store.index('key').getAllKeys(IDBKeyRange.only(key)));
    for (const id of ids) store.delete(id);
    await done(tx);
  }
}
