// Node side of model sources: demo → the repo's demo/fixture folders, local → a folder, url → HTTP,
// hub → the Hub's resolve/<revision>/ layout. Only the CLI (and Node tests) import this.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { folderSource } from '../engine/source-node';
import { urlSource, type FileSource } from '../engine/source';
import { DEMO_MODELS } from '../lab/demo';
import type { ModelSource } from '../lab/experiment';

/** The repository root (two folders above this file). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const HUB_ENDPOINT = process.env.HF_ENDPOINT ?? 'https://huggingface.co';

export function resolveNodeSource(source: ModelSource, cwd = process.cwd()): FileSource {
  switch (source.kind) {
    case 'demo':
      return folderSource(path.join(REPO_ROOT, DEMO_MODELS[source.name].folder));
    case 'local':
      return folderSource(path.resolve(cwd, source.path));
    case 'url':
      return urlSource(source.url.endsWith('/') ? source.url : `${source.url}/`);
    case 'hub':
      return urlSource(
        `${HUB_ENDPOINT}/${source.repo}/resolve/${encodeURIComponent(source.revision ?? 'main')}/`,
      );
  }
}

/** A model source from a CLI argument: an existing folder, an http(s) URL, or a hub id. */
export function parseSourceArg(arg: string, exists: (p: string) => boolean): ModelSource {
  if (/^https?:\/\//.test(arg)) return { kind: 'url', url: arg };
  if (arg.startsWith('demo:')) {
    const name = arg.slice(5);
    if (!(name in DEMO_MODELS))
      throw new Error(`unknown demo model "${name}" (known: ${Object.keys(DEMO_MODELS).join(', ')})`);
    return { kind: 'demo', name: name as keyof typeof DEMO_MODELS };
  }
  if (exists(arg) || arg.startsWith('.') || arg.startsWith('/')) return { kind: 'local', path: arg };
  const m = /^([\w.-]+\/[\w.-]+)(?:@([\w./-]+))?$/.exec(arg);
  if (m) return { kind: 'hub', repo: m[1], ...(m[2] ? { revision: m[2] } : {}) };
  throw new Error(`"${arg}" is not a folder, a URL or a hub id (owner/name[@revision])`);
}
