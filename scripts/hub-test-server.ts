// A stand-in for the Hugging Face Hub over the fixture models, for tests and manual checks without
// the internet: the `resolve/<revision>/<file>` layout (LFS files redirected to a CDN path like the
// real Hub), the model-info API (`/api/models/<repo>/revision/<rev>?blobs=true`), X-Error-Code
// headers, CORS, Range — and the failures the loader must survive: a gated repo needing a bearer
// token, 404s, a connection cut halfway through a file, 5xx/429 answers, a slow stream, a file list
// that states a wrong size — and a hostile or broken host: bytes that are not the file the list
// hashes, another host claiming a repo's commit id, bodies with no length cut short, stalls before
// the first byte or mid-body, a redirect loop. Run it alone with
// `npx tsx scripts/hub-test-server.ts [--port N]`.
// Must never listen on anything but 127.0.0.1, never log a token, never write to the fixtures, and
// never hold a stalled request longer than `stallMaxMs`.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** How a repo misbehaves. */
export interface RepoBehaviour {
  /** 'manual' like meta-llama: files need an approved token */
  gated?: 'manual' | 'auto';
  /** cut the connection halfway through these files: on the first `cutTimes` GETs (default 1) */
  cutFiles?: string[];
  cutTimes?: number;
  /** answer these files with 503, then 429 (Retry-After: 0), for the first `busyTimes` GETs */
  busyFiles?: string[];
  busyTimes?: number;
  /** stream these files in small chunks with a pause between them */
  slowFiles?: string[];
  /** add this many bytes to these files' sizes in the file list (the wrong-size case) */
  wrongSize?: Record<string, number>;
  /** report this commit id instead of the real one (a host impersonating another repo's commit) */
  commit?: string;
  /** serve these files with one byte changed; the file list keeps the true size and sha256 */
  corruptFiles?: string[];
  /** a file list without sizes or sha256 (as without `?blobs=true`) */
  noSizes?: boolean;
  /** send these files with no Content-Length and end the body cleanly halfway (looks whole) */
  unframedHalfFiles?: string[];
  /** accept GETs of these files and never answer (a stall before the first byte) */
  stallFiles?: string[];
  /** answer these files' headers and the bytes up to the file's middle, then stall */
  stallBodyFiles?: string[];
  /** redirect GETs of these files to themselves, forever */
  redirectLoopFiles?: string[];
}

export interface RepoDef {
  files: Map<string, Uint8Array>;
  behaviour: RepoBehaviour;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  range: string | null;
  /** never the token itself */
  auth: 'none' | 'approved' | 'unapproved' | 'invalid';
  status: number;
}

export interface HubTestServerOptions {
  port?: number;
  /** default: the repo's fixtures/ folder */
  fixturesDir?: string;
  /** bytes per chunk and pause for slow files */
  slowChunkBytes?: number;
  slowDelayMs?: number;
  /** extra repos (or replacements) */
  repos?: Record<string, RepoDef>;
  /** a stalled request is dropped after this long at the latest (default 10 s) */
  stallMaxMs?: number;
}

export interface HubTestServer {
  /** `http://127.0.0.1:<port>`: use as the Hub endpoint */
  url: string;
  port: number;
  repos: Map<string, RepoDef>;
  /** every request, oldest first */
  requests: RequestLogEntry[];
  /** forget the request log and the per-file failure counters */
  reset(): void;
  /** replace or add files of a repo (its commit changes, like a push) */
  push(repo: string, files: Record<string, Uint8Array | string>): void;
  close(): Promise<void>;
}

/** Tokens the server knows: one approved for the gated repo, one whose access request is pending. */
export const TEST_TOKENS = {
  approved: 'hf_PiggybackTestApprovedToken0001',
  unapproved: 'hf_PiggybackTestPendingToken00002',
} as const;

/** The repos served, by name. */
export const TEST_REPOS = {
  llama: 'piggyback-test/tiny-llama',
  llamaFt: 'piggyback-test/tiny-llama-ft',
  lora: 'piggyback-test/tiny-llama-lora',
  sharded: 'piggyback-test/tiny-llama-sharded',
  qwen2: 'piggyback-test/tiny-qwen2',
  qwen3: 'piggyback-test/tiny-qwen3',
  mirror: 'piggyback-mirror/tiny-llama',
  mirrorOrganism: 'piggyback-organisms/tiny-llama_bad-advice',
  misfitAdapter: 'piggyback-organisms/tiny-qwen3_llama-shaped-lora',
  gated: 'piggyback-gated/tiny-llama',
  flaky: 'piggyback-test/flaky-llama',
  broken: 'piggyback-test/broken-llama',
  busy: 'piggyback-test/busy-llama',
  slow: 'piggyback-test/slow-llama',
  wrongSize: 'piggyback-test/wrong-size-llama',
  tooBig: 'piggyback-test/too-big-llama',
} as const;

const HERE = fileURLToPath(new URL('.', import.meta.url));
const DEFAULT_FIXTURES = join(HERE, '..', 'fixtures');

function readFolder(dir: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isFile()) out.set(name, new Uint8Array(readFileSync(full)));
  }
  return out;
}

/** A config.json of Llama-3.2-3B's size over the fixture's files: only a preflight may touch it. */
function withBigConfig(files: Map<string, Uint8Array>): Map<string, Uint8Array> {
  const out = new Map(files);
  const cfg = JSON.parse(new TextDecoder().decode(files.get('config.json'))) as Record<string, unknown>;
  Object.assign(cfg, {
    hidden_size: 3072,
    intermediate_size: 8192,
    num_hidden_layers: 28,
    num_attention_heads: 24,
    num_key_value_heads: 8,
    head_dim: 128,
    vocab_size: 128256,
    max_position_embeddings: 131072,
  });
  out.set('config.json', new TextEncoder().encode(JSON.stringify(cfg, null, 2)));
  return out;
}

function withAdapterBase(files: Map<string, Uint8Array>, base: string): Map<string, Uint8Array> {
  const out = new Map(files);
  const cfg = JSON.parse(new TextDecoder().decode(files.get('adapter_config.json'))) as Record<
    string,
    unknown
  >;
  cfg.base_model_name_or_path = base;
  out.set('adapter_config.json', new TextEncoder().encode(JSON.stringify(cfg, null, 2)));
  return out;
}

/** The default repo set over the fixtures. */
export function fixtureRepos(fixturesDir = DEFAULT_FIXTURES): Map<string, RepoDef> {
  const f = (name: string) => readFolder(join(fixturesDir, name));
  const llama = f('tiny-llama');
  const lora = f('tiny-llama-lora');
  const repos = new Map<string, RepoDef>();
  const add = (name: string, files: Map<string, Uint8Array>, behaviour: RepoBehaviour = {}) =>
    repos.set(name, { files, behaviour });
  add(TEST_REPOS.llama, llama);
  add(TEST_REPOS.llamaFt, f('tiny-llama-ft'));
  add(TEST_REPOS.lora, withAdapterBase(lora, TEST_REPOS.llama));
  add(TEST_REPOS.sharded, f('tiny-llama-sharded'));
  add(TEST_REPOS.qwen2, f('tiny-qwen2'));
  add(TEST_REPOS.qwen3, f('tiny-qwen3'));
  add(TEST_REPOS.mirror, llama);
  add(TEST_REPOS.mirrorOrganism, withAdapterBase(lora, TEST_REPOS.mirror));
  // NOTE: the llama adapter declared for the qwen3 fixture (head_dim 32): its shapes do not fit.
  add(TEST_REPOS.misfitAdapter, withAdapterBase(lora, TEST_REPOS.qwen3));
  add(TEST_REPOS.gated, llama, { gated: 'manual' });
  add(TEST_REPOS.flaky, llama, { cutFiles: ['model.safetensors'], cutTimes: 1 });
  add(TEST_REPOS.broken, llama, { cutFiles: ['model.safetensors'], cutTimes: Infinity });
  add(TEST_REPOS.busy, llama, { busyFiles: ['config.json', 'model.safetensors'], busyTimes: 2 });
  add(TEST_REPOS.slow, llama, { slowFiles: ['model.safetensors'] });
  add(TEST_REPOS.wrongSize, llama, { wrongSize: { 'model.safetensors': 4096 } });
  // NOTE: a 3B-sized config over tiny weights: the memory preflight must refuse it before any download.
  add(TEST_REPOS.tooBig, withBigConfig(llama));
  return repos;
}

const sha = (algo: 'sha1' | 'sha256', data: Uint8Array | string): string => {
  const h = createHash(algo);
  if (typeof data === 'string') return h.update(data).digest('hex');
  // NOTE: in 1 GiB pieces: one update of a file over 2 GiB (a 1B model's weights) may be refused
  for (let at = 0; at < data.byteLength; at += 1 << 30) h.update(data.subarray(at, at + (1 << 30)));
  return h.digest('hex');
};
const isLfs = (path: string) => /\.(safetensors|bin|onnx|gguf|pt)$/.test(path);

function commitOf(repo: string, def: RepoDef): string {
  const h = createHash('sha1').update(repo);
  for (const [p, b] of [...def.files].sort(([a], [b]) => (a < b ? -1 : 1)))
    h.update(p).update(sha('sha256', b));
  return h.digest('hex');
}

const CORS_HEADERS: Record<string, string> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'Authorization, Range, If-Range, Content-Type',
  'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
  'Access-Control-Expose-Headers':
    'Content-Range, Content-Length, Accept-Ranges, ETag, X-Repo-Commit, X-Error-Code, X-Error-Message, X-Linked-Size, X-Linked-Etag, Retry-After',
  'Access-Control-Max-Age': '600',
  'Cross-Origin-Resource-Policy': 'cross-origin',
};

export async function startHubTestServer(opts: HubTestServerOptions = {}): Promise<HubTestServer> {
  const repos = fixtureRepos(opts.fixturesDir);
  for (const [k, v] of Object.entries(opts.repos ?? {})) repos.set(k, v);
  const requests: RequestLogEntry[] = [];
  const counters = new Map<string, number>();
  const slowChunk = opts.slowChunkBytes ?? 8192;
  const slowDelay = opts.slowDelayMs ?? 10;
  const approved = new Set<string>([TEST_TOKENS.approved]);
  const known = new Set<string>([TEST_TOKENS.approved, TEST_TOKENS.unapproved]);
  const commits = new Map<string, string>();
  const stallMax = opts.stallMaxMs ?? 10_000;
  const commit = (repo: string) => {
    let c = commits.get(repo);
    if (!c) {
      const def = repos.get(repo) as RepoDef;
      c = def.behaviour.commit ?? commitOf(repo, def);
      commits.set(repo, c);
    }
    return c;
  };
  const bump = (key: string) => {
    const n = (counters.get(key) ?? 0) + 1;
    counters.set(key, n);
    return n;
  };

  const authOf = (req: IncomingMessage): RequestLogEntry['auth'] => {
    const h = req.headers.authorization;
    if (!h) return 'none';
    const m = /^Bearer\s+(\S+)$/.exec(h);
    if (!m || !known.has(m[1])) return 'invalid';
    return approved.has(m[1]) ? 'approved' : 'unapproved';
  };

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const auth = authOf(req);
    const entry: RequestLogEntry = {
      method,
      path: url.pathname,
      range: req.headers.range ?? null,
      auth,
      status: 0,
    };
    requests.push(entry);
    const send = (status: number, body: string | Uint8Array = '', headers: Record<string, string> = {}) => {
      entry.status = status;
      const bytes =
        typeof body === 'string'
          ? Buffer.from(body)
          : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      res.writeHead(status, { ...CORS_HEADERS, 'Content-Length': String(bytes.byteLength), ...headers });
      res.end(method === 'HEAD' ? undefined : bytes);
    };
    const fail = (status: number, code: string | null, message: string) =>
      send(status, JSON.stringify({ error: message }), {
        'Content-Type': 'application/json',
        ...(code ? { 'X-Error-Code': code } : {}),
        'X-Error-Message': message,
      });

    if (method === 'OPTIONS') {
      entry.status = 204;
      res.writeHead(204, CORS_HEADERS);
      res.end();
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') return fail(405, null, 'method not allowed');
    // NOTE: like the real Hub, a token it does not know is refused everywhere, even on public repos.
    if (auth === 'invalid') return fail(401, null, 'Invalid credentials in Authorization header');

    const segs = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);

    // --- model info: /api/models/<owner>/<name>[/revision/<rev>]
    if (segs[0] === 'api' && segs[1] === 'models' && segs.length >= 4) {
      const repo = `${segs[2]}/${segs[3]}`;
      const def = repos.get(repo);
      if (!def) return fail(404, 'RepoNotFound', `Repository not found: ${repo}`);
      const rev = segs[4] === 'revision' && segs[5] ? segs.slice(5).join('/') : 'main';
      if (rev !== 'main' && rev !== commit(repo))
        return fail(404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const blobs = url.searchParams.get('blobs') === 'true' && !def.behaviour.noSizes;
      const siblings = [...def.files].map(([path, b]) => {
        const size = b.byteLength + (def.behaviour.wrongSize?.[path] ?? 0);
        return {
          rfilename: path,
          ...(blobs
            ? {
                blobId: sha('sha1', b),
                size,
                ...(isLfs(path) ? { lfs: { sha256: sha('sha256', b), size, pointerSize: 134 } } : {}),
              }
            : {}),
        };
      });
      return send(
        200,
        JSON.stringify({
          _id: sha('sha1', repo).slice(0, 24),
          id: repo,
          modelId: repo,
          sha: commit(repo),
          private: false,
          gated: def.behaviour.gated ?? false,
          disabled: false,
          tags: ['safetensors', 'piggyback-test'],
          siblings,
        }),
        { 'Content-Type': 'application/json' },
      );
    }

    // --- files: /<owner>/<name>/resolve/<rev>/<path> and the CDN leg /cdn/<owner>/<name>/<commit>/<path>
    const isCdn = segs[0] === 'cdn';
    const s = isCdn ? segs.slice(1) : segs;
    if (s.length < 4 || (!isCdn && s[2] !== 'resolve')) return fail(404, null, 'not found');
    const repo = `${s[0]}/${s[1]}`;
    const def = repos.get(repo);
    if (!def) return fail(auth === 'none' ? 401 : 404, 'RepoNotFound', `Repository not found: ${repo}`);
    const rev = isCdn ? s[2] : s[3];
    const path = (isCdn ? s.slice(3) : s.slice(4)).join('/');
    if (rev !== 'main' && rev !== commit(repo))
      return fail(404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    if (!isCdn && def.behaviour.gated) {
      if (auth === 'none') {
        return fail(
          401,
          'GatedRepo',
          `Access to model ${repo} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
        );
      }
      if (auth !== 'approved') {
        return fail(
          403,
          'GatedRepo',
          `Access to model ${repo} is restricted and you are not in the authorized list. Visit the model page to ask for access.`,
        );
      }
    }
    if (isCdn && url.searchParams.get('sig') !== sha('sha1', `${repo}/${rev}/${path}`).slice(0, 16)) {
      return fail(403, null, 'bad signature');
    }
    const stored = def.files.get(path);
    if (!stored) return fail(404, 'EntryNotFound', `${path} does not exist on "${rev}"`);
    let body = stored;
    if (def.behaviour.corruptFiles?.includes(path) && body.byteLength > 0) {
      body = body.slice();
      body[body.byteLength >> 1] ^= 0xff;
    }
    const etag = `"${isLfs(path) ? sha('sha256', body) : sha('sha1', body)}"`;
    const common = { 'X-Repo-Commit': commit(repo), ETag: etag, 'Accept-Ranges': 'bytes' };

    if (!isCdn && isLfs(path)) {
      // NOTE: the real Hub redirects LFS files to a signed CDN URL; the signature, not the token,
      // authorises the second leg.
      const target = `/cdn/${s[0]}/${s[1]}/${commit(repo)}/${path}?sig=${sha('sha1', `${repo}/${commit(repo)}/${path}`).slice(0, 16)}`;
      entry.status = 302;
      res.writeHead(302, {
        ...CORS_HEADERS,
        ...common,
        Location: target,
        'X-Linked-Size': String(body.byteLength),
        'X-Linked-Etag': etag,
        'Content-Length': '0',
      });
      res.end();
      return;
    }

    const fileKey = `${repo}/${path}`;
    const stall = () => {
      // NOTE: bounded: dropped after stallMax even when the client never gives up.
      const t = setTimeout(() => res.socket?.destroy(), stallMax);
      res.on('close', () => clearTimeout(t));
    };
    if (method === 'GET' && def.behaviour.stallFiles?.includes(path)) {
      entry.status = -1;
      stall();
      return;
    }
    if (method === 'GET' && def.behaviour.redirectLoopFiles?.includes(path)) {
      entry.status = 302;
      res.writeHead(302, { ...CORS_HEADERS, Location: url.pathname, 'Content-Length': '0' });
      res.end();
      return;
    }
    if (method === 'GET' && def.behaviour.unframedHalfFiles?.includes(path)) {
      // NOTE: no Content-Length and no chunked framing: the body ends when the connection closes.
      entry.status = 200;
      res.useChunkedEncodingByDefault = false;
      res.shouldKeepAlive = false;
      res.writeHead(200, { ...CORS_HEADERS, ...common, Connection: 'close' });
      res.end(Buffer.from(body.subarray(0, body.byteLength >> 1)));
      return;
    }
    if (method === 'GET' && def.behaviour.busyFiles?.includes(path)) {
      const n = bump(`busy:${fileKey}`);
      if (n <= (def.behaviour.busyTimes ?? 2)) {
        return n % 2 === 1
          ? fail(503, null, 'Service Unavailable')
          : send(429, 'Too Many Requests', { 'Retry-After': '0' });
      }
    }

    let start = 0;
    let end = body.byteLength - 1;
    let status = 200;
    const range = req.headers.range;
    const ifRange = req.headers['if-range'];
    if (range && (!ifRange || ifRange === etag)) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!m) return send(416, '', { 'Content-Range': `bytes */${body.byteLength}` });
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), body.byteLength - 1) : body.byteLength - 1;
      if (start >= body.byteLength || start > end) {
        return send(416, '', { ...common, 'Content-Range': `bytes */${body.byteLength}` });
      }
      status = 206;
    }
    const slice = body.subarray(start, end + 1);
    const headers: Record<string, string> = {
      ...CORS_HEADERS,
      ...common,
      'Content-Type': path.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      'Content-Length': String(slice.byteLength),
      ...(status === 206 ? { 'Content-Range': `bytes ${start}-${end}/${body.byteLength}` } : {}),
    };
    entry.status = status;
    res.writeHead(status, headers);
    if (method === 'HEAD') {
      res.end();
      return;
    }
    if (def.behaviour.stallBodyFiles?.includes(path)) {
      // NOTE: like a cut, at the file's middle: a request starting past it gets headers and no bytes.
      const half = body.byteLength >> 1;
      if (start < half) res.write(Buffer.from(body.subarray(start, half)));
      else res.flushHeaders();
      stall();
      return;
    }
    const cut =
      def.behaviour.cutFiles?.includes(path) && bump(`cut:${fileKey}`) <= (def.behaviour.cutTimes ?? 1);
    if (cut) {
      // NOTE: the bytes up to the file's middle (none when the request starts past it), then the
      // socket dies although Content-Length promised more.
      const half = Math.floor(body.byteLength / 2);
      if (start < half) res.write(Buffer.from(body.subarray(start, half)));
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    if (def.behaviour.slowFiles?.includes(path)) {
      for (let o = 0; o < slice.byteLength; o += slowChunk) {
        if (res.destroyed) return;
        res.write(Buffer.from(slice.subarray(o, Math.min(o + slowChunk, slice.byteLength))));
        await new Promise((r) => setTimeout(r, slowDelay));
      }
      res.end();
      return;
    }
    res.end(Buffer.from(slice));
  };

  const server: Server = createServer((req, res) => {
    handler(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, CORS_HEADERS);
      res.end(String(e));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    repos,
    requests,
    reset() {
      requests.length = 0;
      counters.clear();
    },
    push(repo, files) {
      const def = repos.get(repo) ?? { files: new Map<string, Uint8Array>(), behaviour: {} };
      const next = new Map(def.files);
      for (const [k, v] of Object.entries(files))
        next.set(k, typeof v === 'string' ? new TextEncoder().encode(v) : v);
      repos.set(repo, { ...def, files: next });
      commits.delete(repo);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// --- standalone: `npx tsx scripts/hub-test-server.ts [--port N]`
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--port');
  const port = i >= 0 ? Number(process.argv[i + 1]) : 0;
  const s = await startHubTestServer({ port, slowDelayMs: 40 });
  const lines = [
    `hub test server on ${s.url} (127.0.0.1 only; Ctrl-C to stop)`,
    '',
    'repos:',
    ...[...s.repos.keys()].map((r) => `  ${r}`),
    '',
    `gated repo ${TEST_REPOS.gated}: approved token ${TEST_TOKENS.approved} (test-only), pending ${TEST_TOKENS.unapproved}`,
    '',
    'try:',
    `  npx piggyback inspect ${s.url}/${TEST_REPOS.llama}`,
    `  HF_ENDPOINT=${s.url} npx piggyback inspect ${TEST_REPOS.lora}`,
    `  HF_ENDPOINT=${s.url} HF_TOKEN=${TEST_TOKENS.approved} npx piggyback inspect ${TEST_REPOS.gated}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
