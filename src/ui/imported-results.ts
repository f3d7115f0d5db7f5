// Results files opened in the browser (Share panel: Import results): a run of this lab elsewhere, or
// of an exported Python script, kept beside the browser's own answers for comparison. A small zustand
// store of its own; it never touches the spec, never sends anything to the worker, and keeps a file
// only once it has validated (lab/export/results-file.ts).
import { createStore, useStore } from 'zustand';
import { parseResultsText, type ResultsFile } from '../lab/export/results-file';

export interface ImportedFile {
  /** unique per import */
  key: string;
  name: string;
  file: ResultsFile;
  warnings: string[];
}

interface ImportedStore {
  files: ImportedFile[];
  add(name: string, text: string): { ok: true; file: ImportedFile } | { ok: false; errors: string[] };
  remove(key: string): void;
}

let counter = 0;

export const importedStore = createStore<ImportedStore>()((set) => ({
  files: [],
  add(name, text) {
    const r = parseResultsText(text);
    if (!r.ok) return r;
    const file: ImportedFile = { key: `import-${++counter}`, name, file: r.file, warnings: r.warnings };
    set((s) => ({ files: [...s.files, file] }));
    return { ok: true, file };
  },
  remove(key) {
    set((s) => ({ files: s.files.filter((f) => f.key !== key) }));
  },
}));

export function useImported<T>(selector: (s: ImportedStore) => T): T {
  return useStore(importedStore, selector);
}
