// The Hub token on the UI side: handed to the worker, kept in this tab's sessionStorage only when the
// user asks, and never in the spec, the store, a share link or localStorage. Plus the endpoint check.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encodeLink } from '../lab/spec/link';
import type { EngineClient } from '../worker/client';
import type { WorkerRequest, WorkerResponse } from '../worker/protocol';
import { keepToken, looksLikeToken, normaliseEndpoint, rememberedToken } from './hub-access';
import { LabSession } from './session';
import { createLabStore } from './store';

const TOKEN = 'hf_UiSideSecretToken0000000001';

function storageDouble(): Storage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    get length() {
      return data.size;
    },
    clear: () => data.clear(),
    key: (i: number) => [...data.keys()][i] ?? null,
    getItem: (k: string) => data.get(k) ?? null,
    setItem: (k: string, v: string) => void data.set(k, v),
    removeItem: (k: string) => void data.delete(k),
  };
}

/** A worker stand-in: answers bookkeeping requests, never finishes model work. */
function fakeClient(sent: WorkerRequest[]): EngineClient {
  let id = 1;
  const answer = (req: Omit<WorkerRequest, 'id'>): Promise<WorkerResponse> => {
    const r = { ...req, id: id++ } as WorkerRequest;
    sent.push(r);
    switch (r.type) {
      case 'hub-token':
        return Promise.resolve({ id: r.id, type: 'hub-token-done', ok: true });
      case 'hub-endpoint':
        return Promise.resolve({
          id: r.id,
          type: 'hub-endpoint-done',
          endpoint: r.endpoint ?? 'https://huggingface.co',
        });
      case 'probe':
        return Promise.resolve({ id: r.id, type: 'probe-done', backend: { kind: 'wasm', shaderF16: false } });
      default:
        return new Promise(() => undefined);
    }
  };
  return {
    request: answer,
    start: (req: Omit<WorkerRequest, 'id'>) => ({ id: id, done: answer(req) }),
    cancel: () => undefined,
    dispose: () => undefined,
  } as unknown as EngineClient;
}

afterEach(() => vi.unstubAllGlobals());

describe('the Hub token in the UI', () => {
  it('goes to the worker only; not into the spec, the store, a link or storage unless asked', async () => {
    const session0 = storageDouble();
    const local = storageDouble();
    vi.stubGlobal('sessionStorage', session0);
    vi.stubGlobal('localStorage', local);
    const store = createLabStore();
    const sent: WorkerRequest[] = [];
    const session = new LabSession(store, () => fakeClient(sent));
    session.start();
    await session.setHubToken(TOKEN, false);
    expect(sent.some((r) => r.type === 'hub-token' && r.token === TOKEN)).toBe(true);
    expect(store.getState().hub.tokenSet).toBe(true);
    const everything = JSON.stringify(store.getState());
    expect(everything).not.toContain(TOKEN);
    const link = encodeLink(store.getState().spec, 'http://lab.invalid/');
    if (!link.ok) throw new Error(link.error.message);
    expect(link.url).not.toContain(TOKEN);
    // NOTE: the link compresses the spec; check the spec JSON as well, and every request but the token's.
    expect(JSON.stringify(store.getState().spec)).not.toContain(TOKEN);
    expect(sent.filter((r) => r.type !== 'hub-token').some((r) => JSON.stringify(r).includes(TOKEN))).toBe(
      false,
    );
    expect([...session0.data.values(), ...local.data.values()].join()).not.toContain(TOKEN);

    await session.setHubToken(TOKEN, true);
    expect(rememberedToken()).toBe(TOKEN);
    expect([...local.data.values()].join()).not.toContain(TOKEN);
    await session.setHubToken(null, false);
    expect(rememberedToken()).toBeNull();
    expect(store.getState().hub.tokenSet).toBe(false);
    session.dispose();
  });

  it('a token remembered by this tab goes to the worker when the session starts', async () => {
    vi.stubGlobal('sessionStorage', storageDouble());
    keepToken(TOKEN, true);
    const sent: WorkerRequest[] = [];
    const session = new LabSession(createLabStore(), () => fakeClient(sent));
    session.start();
    await Promise.resolve();
    expect(sent.some((r) => r.type === 'hub-token' && r.token === TOKEN)).toBe(true);
    session.dispose();
  });

  it('keepToken without remember stores nothing', () => {
    const s = storageDouble();
    keepToken(TOKEN, false, s);
    expect(s.data.size).toBe(0);
    keepToken(TOKEN, true, s);
    expect(rememberedToken(s)).toBe(TOKEN);
    keepToken(TOKEN, false, s);
    expect(s.data.size).toBe(0);
  });

  it('checks token shape and endpoints', () => {
    expect(looksLikeToken(TOKEN)).toBe(true);
    expect(looksLikeToken('my password')).toBe(false);
    expect(normaliseEndpoint('')).toBeNull();
    expect(normaliseEndpoint(' https://hf-mirror.com/ ')).toBe('https://hf-mirror.com');
    expect(normaliseEndpoint('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080');
    expect(normaliseEndpoint('ftp://x')).toBeInstanceOf(Error);
    expect(normaliseEndpoint('https://user:pw@host')).toBeInstanceOf(Error);
    expect(normaliseEndpoint('not a url')).toBeInstanceOf(Error);
  });
});
