// Preflight over the Hub stand-in: an adapter naming a mirror is mapped with a message to confirm, an
// adapter that does not fit its base is refused before any base weight is downloaded, and memory is
// planned per model.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHubTestServer, TEST_REPOS, type HubTestServer } from '../../scripts/hub-test-server';
import { memoryDownloadCache } from '../hub/download-cache';
import { HubClient } from '../hub/hub-api';
import { openHubSource } from '../hub/hub-files';
import { WEBGPU_DEFAULT_LIMITS } from '../engine/memory';
import { defaultSpec, type ExperimentSpec, type ModelSource } from '../lab/spec/experiment';
import { checkAdapterFitsBase, preflightSpec, sourceLabel } from './adapter-preflight';

let server: HubTestServer;
beforeAll(async () => {
  server = await startHubTestServer();
});
afterAll(async () => server.close());
beforeEach(() => server.reset());

const MIRRORS = [[TEST_REPOS.llama, TEST_REPOS.mirror]];

function resolver() {
  const cache = memoryDownloadCache();
  const client = new HubClient({ endpoint: server.url });
  return (s: ModelSource) => {
    if (s.kind !== 'hub') throw new Error('hub only');
    return openHubSource({ client, cache, repo: s.repo, revision: s.revision });
  };
}

function specWith(base: string, adapter: string): ExperimentSpec {
  return {
    ...defaultSpec(),
    models: {
      base: { source: { kind: 'hub', repo: base }, role: 'base' },
      finetuned: {
        source: { kind: 'hub', repo: base },
        adapter: { kind: 'hub', repo: adapter },
        role: 'finetuned',
      },
    },
  };
}

const baseWeightRequests = () =>
  server.requests.filter((r) =>
    /\/(cdn\/)?piggyback-(test|mirror)\/tiny-(llama|qwen3)\/.*model\.safetensors$/.test(r.path),
  );

describe('preflight', () => {
  it('an adapter that names a mirror: shapes fit, the mapping asks to confirm, no base weights fetched', async () => {
    const res = await preflightSpec(specWith(TEST_REPOS.llama, TEST_REPOS.mirrorOrganism), {
      resolveSource: resolver(),
      mirrors: MIRRORS,
      target: { backend: 'webgpu', limits: WEBGPU_DEFAULT_LIMITS },
    });
    expect(res.map((r) => r.id)).toEqual(['base', 'finetuned']);
    const ft = res[1];
    expect(ft.errors).toEqual([]);
    expect(ft.adapter).toMatchObject({
      declaredBase: TEST_REPOS.mirror,
      r: 4,
      alpha: 8,
      branches: 14,
      source: TEST_REPOS.mirrorOrganism,
    });
    expect(ft.confirm?.kind).toBe('mirror');
    expect(ft.confirm?.message).toContain(`the adapter was trained on ${TEST_REPOS.mirror}`);
    expect(ft.memory?.ok).toBe(true);
    expect(baseWeightRequests()).toEqual([]);
  });

  it('an adapter on the base it names needs no confirmation', async () => {
    const res = await preflightSpec(specWith(TEST_REPOS.llama, TEST_REPOS.lora), {
      resolveSource: resolver(),
    });
    expect(res[1].confirm).toBeNull();
    expect(res[1].adapter?.mapping.kind).toBe('same');
    expect(res[1].memory).toBeNull();
  });

  it('an adapter whose shapes do not fit the base is refused before the base weights are downloaded', async () => {
    const res = await preflightSpec(specWith(TEST_REPOS.qwen3, TEST_REPOS.misfitAdapter), {
      resolveSource: resolver(),
    });
    expect(res[1].errors.length).toBe(1);
    expect(res[1].errors[0]).toMatch(/the base model needs|targets layer|lacks/);
    expect(baseWeightRequests()).toEqual([]);
  });

  it('checkAdapterFitsBase throws adapter_mismatch itself; a folder/URL base is not questioned', async () => {
    const r = resolver();
    const adapter = await r({ kind: 'hub', repo: TEST_REPOS.misfitAdapter });
    const qwen = await r({ kind: 'hub', repo: TEST_REPOS.qwen3 });
    await expect(checkAdapterFitsBase(adapter, qwen, TEST_REPOS.qwen3)).rejects.toMatchObject({
      code: 'adapter_mismatch',
    });
    const llama = await r({ kind: 'hub', repo: TEST_REPOS.llama });
    const fit = await checkAdapterFitsBase(adapter, llama);
    expect(fit.mapping.needsConfirmation).toBe(false);
  });

  it('labels sources', () => {
    expect(sourceLabel({ kind: 'hub', repo: 'o/n' })).toBe('o/n');
    expect(sourceLabel({ kind: 'hub', repo: 'o/n', revision: 'dev' })).toBe('o/n@dev');
    expect(sourceLabel({ kind: 'local', path: 'x' })).toBe('x');
    expect(sourceLabel({ kind: 'demo', name: 'demo-base' })).toBe('demo:demo-base');
  });
});

describe('the preflight reads an adapter once, at load', () => {
  it('checks the adapter from its config and safetensors header, not its tensors', async () => {
    const { readFileSync, readdirSync } = await import('node:fs');
    const { memorySource } = await import('../engine/files');
    const { fixturePath } = await import('../engine/test-fixtures');
    const folder = (name: string) =>
      new Map(
        readdirSync(fixturePath(name)).map((f) => [
          f,
          new Uint8Array(readFileSync(`${fixturePath(name)}/${f}`)),
        ]),
      );
    const adapterFiles = folder('tiny-llama-lora');
    const inner = memorySource(adapterFiles, 'adapter');
    let adapterBytesRead = 0;
    const counted = {
      ...inner,
      openRandomAccess: async (path: string) => {
        const r = await inner.openRandomAccess(path);
        return {
          size: r.size,
          read: (offset: number, length: number) => {
            if (path === 'adapter_model.safetensors') adapterBytesRead += length;
            return r.read(offset, length);
          },
        };
      },
    };
    const base = memorySource(folder('tiny-llama'), 'base');
    const spec: ExperimentSpec = {
      ...defaultSpec(),
      models: {
        finetuned: {
          source: { kind: 'local', path: 'base' },
          adapter: { kind: 'local', path: 'adapter' },
          role: 'finetuned',
        },
      },
    };
    const [r] = await preflightSpec(spec, {
      resolveSource: (s) => (s.kind === 'local' && s.path === 'adapter' ? counted : base),
      target: { backend: 'wasm' },
    });
    expect(r.errors).toEqual([]);
    // r 4 on all seven projections of 2 layers: the parameters come from the header's shapes
    expect(r.adapter?.parameters).toBe(2 * 4 * (64 + 64 + (64 + 32) * 2 + 64 + 64 + (64 + 128) * 3));
    expect(r.loraParams).toBe(r.adapter?.parameters);
    const size = adapterFiles.get('adapter_model.safetensors')?.byteLength ?? 0;
    const header =
      8 + Number(new DataView(adapterFiles.get('adapter_model.safetensors')!.buffer).getBigUint64(0, true));
    expect(adapterBytesRead).toBeLessThanOrEqual(header);
    expect(adapterBytesRead).toBeLessThan(size / 4);
  });
});
