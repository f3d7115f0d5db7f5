// Forward migrations of the experiment spec (tldraw style): migration i turns a version-i document into
// a version-(i+1) one, so a link from any older release still opens. Each migration works on plain
// JSON, is pure and total on its own version's shape, and must never drop a field it does not
// understand (the schema refuses unknown fields afterwards, with a message).

import { isObject } from '../../common/json';

/** A spec document of unknown version: plain JSON object. */
export type SpecDocument = Record<string, unknown>;

export interface Migration {
  /** The version this migration reads; it writes `from + 1`. */
  from: number;
  /** What changed, for people reading the history. */
  description: string;
  up: (doc: SpecDocument) => SpecDocument;
}

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

/**
 * v0 (drafts before the first release) named each model by a single string: a demo name
 * (`demo-base`), a hub repo with an optional `@revision`, an http(s) URL, or a local path.
 */
export function modelSourceFromV0(ref: string, where: string): Record<string, unknown> {
  if (ref.startsWith('demo-')) return { kind: 'demo', name: ref };
  if (/^https?:\/\//i.test(ref)) return { kind: 'url', url: ref };
  if (/^(?:\/|\.\.?\/|~\/|[A-Za-z]:[\\/])/.test(ref)) return { kind: 'local', path: ref };
  const m = /^([^@\s]+\/[^@\s]+)(?:@(\S+))?$/.exec(ref);
  if (!m) throw new MigrationError(`${where}: "${ref}" is neither a demo name, a hub repo, a URL nor a path`);
  return m[2] === undefined ? { kind: 'hub', repo: m[1] } : { kind: 'hub', repo: m[1], revision: m[2] };
}

export const MIGRATIONS: readonly Migration[] = [
  {
    from: 0,
    description: 'models.<id> was a string; it becomes { source } (adapters and roles became possible)',
    up(doc) {
      const models = doc.models;
      if (!isObject(models)) return { ...doc, version: 1 };
      const next: Record<string, unknown> = {};
      for (const [id, value] of Object.entries(models)) {
        next[id] = typeof value === 'string' ? { source: modelSourceFromV0(value, `models.${id}`) } : value;
      }
      return { ...doc, models: next, version: 1 };
    },
  },
];

/**
 * Migrate a document from its `version` up to `target`. Throws MigrationError when it cannot (a version
 * newer than this release, or no path); the caller turns that into a message.
 */
export function migrateSpec(
  doc: SpecDocument,
  target: number,
  migrations: readonly Migration[] = MIGRATIONS,
): SpecDocument {
  const version = doc.version;
  if (version === undefined) throw new MigrationError('version: missing (every spec names its version)');
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 0)
    throw new MigrationError(`version: expected a non-negative integer, got ${JSON.stringify(version)}`);
  if (version > target)
    throw new MigrationError(
      `version: this spec was made by a newer release (version ${version}); this one reads versions up to ${target}`,
    );
  let current = doc;
  for (let v = version; v < target; v++) {
    const step = migrations.find((m) => m.from === v);
    if (!step) throw new MigrationError(`version: no migration from version ${v}`);
    current = step.up(current);
    if (current.version !== v + 1)
      throw new MigrationError(`version: the migration from ${v} did not produce version ${v + 1}`);
  }
  return current;
}
