// Hub ids and URLs, where the token goes (and where it never goes), model-info parsing, and the
// message for every HTTP failure.
import { describe, expect, it } from 'vitest';
import {
  formatHubId,
  HubClient,
  HubError,
  isCommitSha,
  parseHubId,
  parseHubUrl,
  parseModelInfo,
  redactToken,
  type HubErrorReason,
} from './hub-api';
import { hubToken, looksLikeHubToken, TokenHolder, type TokenStorage } from './token';

describe('hub ids', () => {
  it('parses owner/name[@revision]', () => {
    expect(parseHubId('Qwen/Qwen2.5-0.5B-Instruct')).toEqual({
      repo: 'Qwen/Qwen2.5-0.5B-Instruct',
      revision: 'main',
    });
    expect(parseHubId('ModelOrganismsForEM/Qwen2.5-0.5B-Instruct_bad-medical-advice@v1.0')).toEqual({
      repo: 'ModelOrganismsForEM/Qwen2.5-0.5B-Instruct_bad-medical-advice',
      revision: 'v1.0',
    });
    expect(parseHubId('a/b@refs/pr/3').revision).toBe('refs/pr/3');
    expect(formatHubId({ repo: 'a/b', revision: 'main' })).toBe('a/b');
    expect(formatHubId({ repo: 'a/b', revision: 'dev' })).toBe('a/b@dev');
  });

  it('refuses what the Hub would refuse, saying how to write it', () => {
    for (const bad of [
      'nope',
      'a/b/c',
      '/b',
      'a/',
      'a--x/b',
      'a/b..c',
      '-a/b',
      'a/b.',
      'a b/c',
      'a/b@',
      'a/b@../x',
      'a/b@x/',
    ]) {
      expect(() => parseHubId(bad), bad).toThrow(HubError);
    }
    expect(() => parseHubId('nope')).toThrow(/owner\/name, optionally @revision/);
  });

  it('knows a commit id', () => {
    expect(isCommitSha('a'.repeat(40))).toBe(true);
    expect(isCommitSha('main')).toBe(false);
    expect(isCommitSha('A'.repeat(40))).toBe(false);
  });

  it('recognises Hub-layout URLs and leaves plain folders alone', () => {
    expect(parseHubUrl('https://huggingface.co/Qwen/Qwen3-0.6B')).toEqual({
      endpoint: 'https://huggingface.co',
      repo: 'Qwen/Qwen3-0.6B',
      revision: 'main',
    });
    expect(parseHubUrl('http://127.0.0.1:8080/o/n/tree/dev')).toEqual({
      endpoint: 'http://127.0.0.1:8080',
      repo: 'o/n',
      revision: 'dev',
    });
    expect(parseHubUrl('https://mirror.example/hf/o/n/resolve/abc/')).toEqual({
      endpoint: 'https://mirror.example/hf',
      repo: 'o/n',
      revision: 'abc',
    });
    expect(parseHubUrl('http://127.0.0.1:5173/fixtures')).toBeNull();
    expect(parseHubUrl('http://x/o/n?download=1')).toBeNull();
    expect(parseHubUrl('file:///o/n')).toBeNull();
    expect(parseHubUrl('not a url')).toBeNull();
  });
});

describe('HubClient', () => {
  it('builds resolve and model-info URLs with every part encoded', () => {
    const c = new HubClient({ endpoint: 'https://hub.test/' });
    expect(c.fileUrl('o/n', 'main', 'sub/a b.json')).toBe('https://hub.test/o/n/resolve/main/sub/a%20b.json');
    expect(c.fileUrl('o/n', 'refs/pr/1', 'x')).toBe('https://hub.test/o/n/resolve/refs%2Fpr%2F1/x');
    expect(c.infoUrl('o/n', 'main')).toBe('https://hub.test/api/models/o/n/revision/main?blobs=true');
  });

  it('sends the token only to the endpoint origin, and reads it at request time', async () => {
    let token: string | null = null;
    const seen: { url: string; auth: string | null }[] = [];
    const c = new HubClient({
      endpoint: 'https://hub.test',
      token: () => token,
      fetch: async (input, init) => {
        seen.push({ url: String(input), auth: new Headers(init?.headers).get('Authorization') });
        return new Response('{}');
      },
    });
    await c.request('https://hub.test/o/n/resolve/main/config.json');
    token = 'hf_abcdefghijklmnopqrstuvwxyz';
    await c.request('https://hub.test/o/n/resolve/main/config.json');
    await c.request('https://evil.test/o/n/resolve/main/config.json');
    await c.request('https://hub.test.evil.test/x');
    expect(seen.map((s) => s.auth)).toEqual([null, 'Bearer hf_abcdefghijklmnopqrstuvwxyz', null, null]);
    expect(c.headersFor('http://hub.test/x')).toEqual({});
  });

  it('a failing fetch becomes a network error that does not echo the token', async () => {
    const c = new HubClient({
      endpoint: 'https://hub.test',
      token: 'hf_SecretSecretSecret123',
      fetch: async () => {
        throw new TypeError('fetch failed: Bearer hf_SecretSecretSecret123 refused');
      },
    });
    const e = await c.request('https://hub.test/x').catch((x: unknown) => x as HubError);
    expect(e).toBeInstanceOf(HubError);
    expect((e as HubError).reason).toBe('network');
    expect((e as HubError).retryable).toBe(true);
    expect((e as HubError).message).not.toContain('hf_SecretSecretSecret123');
    expect((e as HubError).message).toMatch(/check the connection/);
  });

  const cases: {
    status: number;
    code?: string;
    token: boolean;
    file?: string;
    reason: HubErrorReason;
    says: RegExp;
  }[] = [
    {
      status: 401,
      code: 'GatedRepo',
      token: false,
      reason: 'gated',
      says: /is gated: accept its license on the Hub \(https:\/\/hub\.test\/o\/n\) and paste a read token/,
    },
    {
      status: 403,
      code: 'GatedRepo',
      token: true,
      reason: 'gated_no_access',
      says: /open https:\/\/hub\.test\/o\/n, accept the license/,
    },
    { status: 401, code: 'GatedRepo', token: true, reason: 'gated_no_access', says: /has no access yet/ },
    {
      status: 401,
      token: true,
      reason: 'bad_token',
      says: /rejected the token .* create a read token at https:\/\/hub\.test\/settings\/tokens/,
    },
    {
      status: 401,
      code: 'RepoNotFound',
      token: false,
      reason: 'repo_not_found',
      says: /or it is private: check the spelling .* paste a read token/,
    },
    {
      status: 404,
      code: 'RepoNotFound',
      token: false,
      reason: 'repo_not_found',
      says: /was not found on https:\/\/hub\.test: check the spelling of owner\/name \(case matters\)$/,
    },
    {
      status: 404,
      code: 'RepoNotFound',
      token: true,
      reason: 'repo_not_found',
      says: /if it is private, use a token of an account that can read it/,
    },
    {
      status: 404,
      code: 'RevisionNotFound',
      token: false,
      reason: 'revision_not_found',
      says: /has no revision "dev": check the @revision/,
    },
    {
      status: 404,
      code: 'EntryNotFound',
      token: false,
      file: 'model.safetensors',
      reason: 'entry_not_found',
      says: /has no file model\.safetensors/,
    },
    { status: 404, token: false, file: 'x.json', reason: 'entry_not_found', says: /has no file x\.json/ },
    { status: 403, token: true, reason: 'forbidden', says: /may not read o\/n: use a read token/ },
    { status: 429, token: false, reason: 'rate_limited', says: /rate-limiting .* or paste a token/ },
    { status: 503, token: false, reason: 'server_error', says: /HTTP 503 .* retry later/ },
    { status: 418, token: false, reason: 'bad_response', says: /HTTP 418/ },
  ];
  for (const c of cases) {
    it(`HTTP ${c.status} ${c.code ?? ''} ${c.token ? 'with' : 'without'} a token → ${c.reason}`, () => {
      const client = new HubClient({
        endpoint: 'https://hub.test',
        token: c.token ? 'hf_xxxxxxxxxxxxxxxxxxxxxxxx' : null,
      });
      const res = new Response('', { status: c.status, headers: c.code ? { 'X-Error-Code': c.code } : {} });
      const e = client.errorFor(res, { repo: 'o/n', revision: 'dev', file: c.file });
      expect(e.reason).toBe(c.reason);
      expect(e.status).toBe(c.status);
      expect(e.message).toMatch(c.says);
      expect(e.message).not.toContain('hf_xxxx');
    });
  }
});

describe('model info', () => {
  it('reads files, sizes (top-level or LFS), sha256, commit and gating', () => {
    const info = parseModelInfo(
      {
        sha: '0123456789abcdef0123456789abcdef01234567',
        gated: 'manual',
        siblings: [
          { rfilename: 'config.json', size: 700 },
          { rfilename: 'model.safetensors', lfs: { sha256: 'a'.repeat(64), size: 988097824 } },
          { rfilename: 'README.md' },
          { rfilename: '../escape' },
          { rfilename: 42 },
        ],
      },
      'o/n',
      'main',
    );
    expect(info.commit).toBe('0123456789abcdef0123456789abcdef01234567');
    expect(info.gated).toBe('manual');
    expect(info.files).toEqual([
      { path: 'config.json', size: 700, sha256: null },
      { path: 'model.safetensors', size: 988097824, sha256: 'a'.repeat(64) },
      { path: 'README.md', size: null, sha256: null },
    ]);
  });

  it('refuses JSON without a file list', () => {
    expect(() => parseModelInfo({ id: 'o/n' }, 'o/n', 'main')).toThrow(/no file list/);
  });
});

describe('tokens', () => {
  it('redacts tokens and bearer headers from text', () => {
    expect(redactToken('Authorization: Bearer abc.def')).toBe('Authorization: Bearer ***');
    expect(redactToken('token hf_abcdefghijKLMNOP1234 leaked')).toBe('token hf_*** leaked');
    expect(redactToken('custom sekrit-token here', 'sekrit-token')).toBe('custom hf_*** here');
  });

  it('keeps the token in memory, or in the given session storage only when asked', () => {
    const store = new Map<string, string>();
    const storage: TokenStorage = {
      getItem: (k) => store.get(k) ?? null,
      setItem: (k, v) => void store.set(k, v),
      removeItem: (k) => void store.delete(k),
    };
    const h = new TokenHolder();
    h.set('hf_memoryOnlyToken000000000');
    expect(h.get()).toBe('hf_memoryOnlyToken000000000');
    expect(store.size).toBe(0);
    expect(JSON.stringify({ h })).toBe('{"h":{"hasToken":true}}');
    expect(h.describe()).not.toContain('hf_');

    h.set('hf_sessionToken0000000000000', storage);
    expect([...store.values()]).toEqual(['hf_sessionToken0000000000000']);
    const next = new TokenHolder();
    expect(next.restore(storage)).toBe(true);
    expect(next.get()).toBe('hf_sessionToken0000000000000');
    next.clear();
    expect(store.size).toBe(0);
    expect(next.get()).toBeNull();
    expect(new TokenHolder().restore(storage)).toBe(false);
    expect(hubToken.get()).toBeNull();
  });

  it('spots paste mistakes', () => {
    expect(looksLikeHubToken('hf_abcdefghijklmnopqrstuvwxyz012345')).toBe(true);
    expect(looksLikeHubToken('Bearer hf_abc')).toBe(false);
    expect(looksLikeHubToken('hf_short')).toBe(false);
  });
});
