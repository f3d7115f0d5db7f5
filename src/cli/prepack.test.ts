// `--no-prepack` reaches ORT: every session the CLI opens (here from its graph files) gets
// `session.disable_prepacking=1` in its session options; without the flag none does (prepacking stays on).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadOrtNode } from '../engine/session';
import { main } from './main';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'prepack-test-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** The `extra` session config of every InferenceSession.create during one in-process CLI run. */
async function sessionExtras(...flags: string[]): Promise<unknown[]> {
  const ort = await loadOrtNode();
  const create = vi.spyOn(ort.InferenceSession, 'create');
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const code = await main([
    'run',
    'examples/fixtures-kv-patch.json',
    '--json',
    '--graph-cache',
    path.join(tmp, 'graphs'),
    ...flags,
  ]);
  expect(code).toBe(0);
  const extras = create.mock.calls.map((c) => (c[1] as { extra?: unknown } | undefined)?.extra);
  vi.restoreAllMocks();
  return extras;
}

describe('--no-prepack', () => {
  it('puts session.disable_prepacking=1 into every session the run opens, and only with the flag', async () => {
    const off = await sessionExtras('--no-prepack');
    expect(off.length).toBeGreaterThan(0);
    for (const e of off) expect(e).toMatchObject({ 'session.disable_prepacking': '1' });
    const on = await sessionExtras();
    expect(on.length).toBeGreaterThan(0);
    for (const e of on)
      expect((e as Record<string, string> | undefined)?.['session.disable_prepacking']).toBeUndefined();
  });
});
