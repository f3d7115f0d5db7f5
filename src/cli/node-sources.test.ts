// The CLI's source resolution against two loopback Hub stand-ins: a URL source in the Hub's layout on
// another host, serving the same owner/name (and claiming the real commit id), plants nothing the
// real Hub's repo then uses from the shared folder cache — with or without --refresh.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubTestServer, TEST_REPOS, type HubTestServer } from '../../scripts/hub-test-server';
import { folderDownloadCache } from '../hub/download-cache-node';
import { HubClient } from '../hub/hub-api';
import { resolveNodeSource } from './node-sources';

let real: HubTestServer;
let other: HubTestServer;
let dir = '';
const REPO = TEST_REPOS.llama;

beforeAll(async () => {
  real = await startHubTestServer();
  const truth = await new HubClient({ endpoint: real.url }).modelInfo(REPO);
  const files = new Map(real.repos.get(REPO)!.files);
  // NOTE: as long as the real config.json, so the size check alone cannot tell them apart
  const realLength = files.get('config.json')!.byteLength;
  files.set('config.json', new TextEncoder().encode('{"planted": true}'.padEnd(realLength, ' ')));
  other = await startHubTestServer({
    repos: { [REPO]: { files, behaviour: { commit: truth.commit as string } } },
  });
  dir = await mkdtemp(join(tmpdir(), 'piggyback-node-sources-'));
});
afterAll(async () => {
  await real.close();
  await other.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('resolveNodeSource and the folder cache', () => {
  it('a URL source on another host never serves the Hub repo of the same name', async () => {
    const cache = folderDownloadCache(dir);
    const opts = { endpoint: real.url, token: null, cache };
    const planted = await resolveNodeSource({ kind: 'url', url: `${other.url}/${REPO}` }, dir, opts);
    expect(await planted.readJson('config.json')).toEqual({ planted: true });
    for (const refresh of [false, true]) {
      real.reset();
      const hub = await resolveNodeSource({ kind: 'hub', repo: REPO }, dir, { ...opts, refresh });
      expect(await hub.readJson('config.json')).not.toHaveProperty('planted');
      if (!refresh) expect(real.requests.some((r) => r.path.endsWith('/config.json'))).toBe(true);
    }
  });
});
