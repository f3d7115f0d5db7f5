// Picked / dropped folders as a FileSource: paths rooted at the config's folder, models and adapters
// load like from disk.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { blobFolderSource, type PickedFile } from './browser-files';
import { loadLora } from '../engine/lora';
import { loadModel } from '../engine/weights';

const FIX = join(__dirname, '../../fixtures');

function picked(folder: string, prefix: string): PickedFile[] {
  return readdirSync(join(FIX, folder)).map((n) => ({
    path: `${prefix}${n}`,
    blob: new Blob([readFileSync(join(FIX, folder, n))]),
  }));
}

describe('blobFolderSource', () => {
  it('loads a picked model folder and a dropped adapter folder', async () => {
    const model = blobFolderSource(picked('tiny-llama-sharded', 'tiny-llama-sharded/'), 'tiny-llama-sharded');
    const m = await loadModel(model);
    expect(m.spec.numLayers).toBe(2);
    const adapter = blobFolderSource([
      ...picked('tiny-llama-lora', 'Downloads/organism/'),
      { path: 'Downloads/notes.txt', blob: new Blob(['x']) },
    ]);
    expect(await adapter.has('adapter_config.json')).toBe(true);
    expect(await adapter.has('notes.txt')).toBe(false);
    const lora = await loadLora(adapter, m.spec);
    expect(lora.r).toBe(4);
  });

  it('a missing file is missing_file; paths cannot climb out', async () => {
    const s = blobFolderSource([
      { path: 'a/config.json', blob: new Blob(['{}']) },
      { path: 'a/../evil.json', blob: new Blob(['{}']) },
    ]);
    await expect(s.readText('model.safetensors')).rejects.toMatchObject({ code: 'missing_file' });
    expect(await s.has('../evil.json')).toBe(false);
    expect(await s.readJson('config.json')).toEqual({});
  });
});
