// Collects a model folder the user handed to the page — a directory picker (`<input webkitdirectory>`)
// or a folder / files dropped on it — as File objects with their paths, for the worker's blob folder
// source. The folder's name becomes the spec's `{kind: 'local', path}`; the files never leave the page.
// Must never read a file's contents (the worker reads slices when it loads) and never upload anything.
import type { LocalFile } from '../worker/protocol';

export interface PickedFolder {
  /** the folder's name (what the spec keeps) */
  name: string;
  files: LocalFile[];
}

/** What the folder holds, for the panel: a model, an adapter, or neither. */
export function folderKind(files: readonly LocalFile[]): 'model' | 'adapter' | 'unknown' {
  const names = new Set(files.map((f) => f.path.split('/').pop()));
  if (names.has('adapter_config.json')) return 'adapter';
  if (names.has('config.json')) return 'model';
  return 'unknown';
}

/** Files of a directory picker: paths are `webkitRelativePath` (`my-model/config.json`). */
export function folderFromInput(list: FileList | readonly File[]): PickedFolder | null {
  const files = [...list];
  if (files.length === 0) return null;
  const out = files.map((f) => ({ path: f.webkitRelativePath || f.name, file: f as Blob }));
  const first = out[0].path.split('/');
  return { name: first.length > 1 ? first[0] : 'picked files', files: out };
}

// The File and Directory Entries API, as far as this module uses it.
interface EntryLike {
  isFile: boolean;
  isDirectory: boolean;
  name: string;
}
interface FileEntryLike extends EntryLike {
  file(ok: (f: File) => void, fail: (e: unknown) => void): void;
}
interface DirEntryLike extends EntryLike {
  createReader(): { readEntries(ok: (e: EntryLike[]) => void, fail: (e: unknown) => void): void };
}

async function walk(entry: EntryLike, prefix: string, out: LocalFile[]): Promise<void> {
  const path = prefix ? `${prefix}/${entry.name}` : entry.name;
  if (entry.isFile) {
    const file = await new Promise<File>((ok, fail) => (entry as FileEntryLike).file(ok, fail));
    out.push({ path, file });
    return;
  }
  if (!entry.isDirectory) return;
  const reader = (entry as DirEntryLike).createReader();
  // NOTE: readEntries answers in batches (about 100); an empty batch means the end.
  for (;;) {
    const batch = await new Promise<EntryLike[]>((ok, fail) => reader.readEntries(ok, fail));
    if (batch.length === 0) break;
    for (const e of batch) await walk(e, path, out);
  }
}

/** A dropped folder (or loose files, named after the first one's folder-less drop) as a PickedFolder. */
export async function folderFromDrop(dt: DataTransfer): Promise<PickedFolder | null> {
  const entries: EntryLike[] = [];
  for (const item of [...dt.items]) {
    const get = (item as { webkitGetAsEntry?: () => EntryLike | null }).webkitGetAsEntry;
    const e = item.kind === 'file' && get ? get.call(item) : null;
    if (e) entries.push(e);
  }
  if (entries.length === 0) {
    const loose = folderFromInput(dt.files);
    return loose && loose.name === 'picked files' ? { ...loose, name: 'dropped files' } : loose;
  }
  const files: LocalFile[] = [];
  for (const e of entries) await walk(e, '', files);
  if (files.length === 0) return null;
  const dir = entries.length === 1 && entries[0].isDirectory ? entries[0].name : null;
  return { name: dir ?? 'dropped files', files };
}
