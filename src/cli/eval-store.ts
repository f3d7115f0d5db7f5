// The Node evaluation store: finished rows as JSON lines, one file per evaluation key, so
// `piggyback eval` resumes where a cancelled run stopped. A torn last line (a kill mid-write) is
// skipped. It must never write outside its folder, and rows never hold a key (evaluate.ts).
import fs from 'node:fs';
import path from 'node:path';
import { defaultDownloadCacheDir } from '../hub/download-cache-node';
import type { EvalRow, EvalStore } from '../lab/eval/evaluate';

/** `eval/` in the CLI's one cache folder (the download cache's: `PIGGYBACK_CACHE`, else XDG, else ~/.cache). */
export function defaultEvalCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(defaultDownloadCacheDir(env), 'eval');
}

export class FileEvalStore implements EvalStore {
  constructor(readonly dir: string) {}

  file(key: string): string {
    if (!/^[0-9a-f][0-9a-f-]{0,63}$/.test(key)) throw new Error(`bad evaluation key "${key}"`);
    return path.join(this.dir, `${key}.jsonl`);
  }

  async load(key: string): Promise<EvalRow[]> {
    let text: string;
    try {
      text = await fs.promises.readFile(this.file(key), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const rows: EvalRow[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        rows.push(JSON.parse(line) as EvalRow);
      } catch {
        // a line torn by a kill mid-write: that row is simply done again
      }
    }
    return rows;
  }

  async append(key: string, rows: readonly EvalRow[]): Promise<void> {
    await fs.promises.mkdir(this.dir, { recursive: true });
    // NOTE: each row starts a new line, so a row after a torn one is still read.
    await fs.promises.appendFile(this.file(key), rows.map((r) => `\n${JSON.stringify(r)}`).join(''));
  }

  async clear(key: string): Promise<void> {
    await fs.promises.rm(this.file(key), { force: true });
  }
}
