// A FileSource over files the user handed to the browser — a directory picker (`<input webkitdirectory>`
// or `showDirectoryPicker`) or a folder dropped on the page — so a local model or adapter folder loads
// like any other source. Reads are Blob slices: a multi-GB safetensors file is never held whole.
// Must never read outside the files given, never read a text file past its limit (engine/files.ts),
// never touch the DOM itself (the caller collects the Files), and never import Node APIs.

import { checkTextSize, missingFile, parseJsonText, type FileSource } from '../engine/files';
import { blobReader } from '../engine/safetensors';

/** A picked or dropped file with its path inside the chosen folder (`webkitRelativePath` style). */
export interface PickedFile {
  path: string;
  blob: Blob;
}

/**
 * Paths are made relative to the folder that holds `config.json` or `adapter_config.json` (a picker
 * reports `my-model/config.json`; a drop may add more levels). Files elsewhere are ignored.
 */
export function blobFolderSource(files: readonly PickedFile[], id = 'local folder'): FileSource {
  const norm = files.map((f) => ({ path: f.path.replace(/\\/g, '/').replace(/^\/+/, ''), blob: f.blob }));
  const markers = norm
    .filter((f) => /(^|\/)(adapter_)?config\.json$/.test(f.path))
    .map((f) => f.path.slice(0, f.path.lastIndexOf('/') + 1));
  // NOTE: the shallowest folder with a config wins (a checkpoint folder may hold older sub-checkpoints).
  const root = markers.sort((a, b) => a.split('/').length - b.split('/').length)[0] ?? '';
  const map = new Map<string, Blob>();
  for (const f of norm) {
    if (!f.path.startsWith(root)) continue;
    const rel = f.path.slice(root.length);
    if (rel === '' || rel.split('/').some((p) => p === '' || p === '.' || p === '..')) continue;
    map.set(rel, f.blob);
  }
  const get = (path: string): Blob => {
    const b = map.get(path);
    if (!b) throw missingFile(id, path);
    return b;
  };
  const readBytes = async (path: string) => new Uint8Array(await get(path).arrayBuffer());
  const readText = async (path: string) => {
    checkTextSize(id, path, get(path).size);
    return new TextDecoder().decode(await readBytes(path));
  };
  return {
    id,
    has: async (path) => map.has(path),
    readBytes,
    readText,
    readJson: async (path) => parseJsonText(await readText(path), `${id}/${path}`),
    openRandomAccess: async (path) => blobReader(get(path), path),
  };
}
