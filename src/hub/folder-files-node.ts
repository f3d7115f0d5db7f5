// FileSource over a local folder with Node's fs (CLI, tests, scripts). Node-only, like every
// *-node.ts file; the browser bundle must never import it.
// Must never read outside its folder (paths are relative, `..` refused), never read a text file past
// its limit (engine/files.ts: its size is checked first), nor keep file handles open between reads.

import { open, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { EngineError } from '../engine/errors';
import { checkTextSize, missingFile, parseJsonText, type FileSource } from '../engine/files';
import { checkedReader, type RandomAccessReader } from '../engine/safetensors';

/**
 * Random access to a file on disk of `size` bytes (as stat said when it was opened): a handle per
 * read, closed before returning. A file that shrank since is `truncated_file` (checkedReader).
 */
export function fileReader(full: string, size: number, label: string): RandomAccessReader {
  return checkedReader(size, label, async (offset, length) => {
    const out = new Uint8Array(length);
    const fh = await open(full, 'r');
    try {
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(out, done, length - done, offset + done);
        if (bytesRead === 0) return out.subarray(0, done);
        done += bytesRead;
      }
    } finally {
      await fh.close();
    }
    return out;
  });
}

export function folderSource(dir: string): FileSource {
  const resolve = (path: string): string => {
    const n = normalize(path);
    if (isAbsolute(n) || n === '..' || n.startsWith(`..${sep}`)) {
      throw new EngineError('missing_file', `${path} is outside ${dir}`, { file: path, source: dir });
    }
    return join(dir, n);
  };
  const isFile = async (path: string): Promise<boolean> => {
    try {
      return (await stat(resolve(path))).isFile();
    } catch (e) {
      if (e instanceof EngineError) throw e;
      return false;
    }
  };
  const readBytes = async (path: string): Promise<Uint8Array> => {
    if (!(await isFile(path))) throw missingFile(dir, path);
    return new Uint8Array(await readFile(resolve(path)));
  };
  const readText = async (path: string): Promise<string> => {
    if (!(await isFile(path))) throw missingFile(dir, path);
    // NOTE: the size first, so a huge file is refused without being read.
    checkTextSize(dir, path, (await stat(resolve(path))).size);
    return new TextDecoder().decode(await readBytes(path));
  };
  return {
    id: dir,
    has: isFile,
    readBytes,
    readText,
    readJson: async (path) => parseJsonText(await readText(path), `${dir}/${path}`),
    async openRandomAccess(path): Promise<RandomAccessReader> {
      if (!(await isFile(path))) throw missingFile(dir, path);
      const full = resolve(path);
      return fileReader(full, (await stat(full)).size, path);
    },
  };
}
