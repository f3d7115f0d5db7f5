// Hugging Face Hub client: `owner/name[@revision]` ids, the model-info API (file list + sizes), the
// `resolve/<revision>/<file>` download URLs, the bearer token, and HubError — one message per failure
// that says what to do (gated repo, bad token, not found, rate limit, Hub down, no network).
// Must never send the token to any origin but the configured endpoint, never put it in a URL, an id,
// an error message or a cache key, and never import Node APIs or the DOM.

import { isObject } from '../common/json';
import { EngineError, type EngineErrorCode } from '../engine/errors';
import { classifyFetchFailure, fetchWithTimeouts, readCapped, type HttpTimeouts } from './http-timeouts';

/**
 * The most bytes of model-info JSON read: the file list of a repo with thousands of files is a few
 * MB; more means the endpoint is not a Hub (or a hostile one), so 16 MiB.
 */
export const MODEL_INFO_LIMIT = 16 * 1024 * 1024;

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

/** A repo at a revision (branch, tag or commit). */
export interface HubRef {
  repo: string;
  revision: string;
}

export type HubErrorReason =
  /** the id is not `owner/name[@revision]` */
  | 'bad_repo_id'
  /** 401 on a gated repo without a token */
  | 'gated'
  /** 401/403 on a gated repo whose license this token's account has not been granted */
  | 'gated_no_access'
  /** 401 with a token: the Hub does not accept it */
  | 'bad_token'
  /** 403: the token may not read this repo */
  | 'forbidden'
  /** 404 (or 401 without a token): no such repo, or a private one */
  | 'repo_not_found'
  | 'revision_not_found'
  | 'entry_not_found'
  | 'rate_limited'
  | 'server_error'
  /** the request never got an answer (offline, DNS, connection cut) */
  | 'network'
  /** the bytes received disagree with the size the Hub announced */
  | 'size_mismatch'
  /** the bytes received hash to another sha256 than the file list gives */
  | 'hash_mismatch'
  /** nothing (size, Content-Length, sha256) proves that the body received is the whole file */
  | 'length_unknown'
  /** the file is larger than a reader of its kind accepts (a JSON file of hundreds of MB) */
  | 'too_large'
  /** the server kept redirecting */
  | 'redirect_loop'
  /** the Hub answered something this client does not understand */
  | 'bad_response'
  | 'aborted';

const CODE_OF: Record<HubErrorReason, EngineErrorCode> = {
  bad_repo_id: 'bad_input',
  gated: 'fetch_failed',
  gated_no_access: 'fetch_failed',
  bad_token: 'fetch_failed',
  forbidden: 'fetch_failed',
  repo_not_found: 'fetch_failed',
  revision_not_found: 'fetch_failed',
  entry_not_found: 'missing_file',
  rate_limited: 'fetch_failed',
  server_error: 'fetch_failed',
  network: 'fetch_failed',
  size_mismatch: 'truncated_file',
  hash_mismatch: 'fetch_failed',
  length_unknown: 'fetch_failed',
  too_large: 'file_too_large',
  redirect_loop: 'fetch_failed',
  bad_response: 'fetch_failed',
  aborted: 'fetch_failed',
};

/** A Hub failure: `reason` to switch on, a message that ends with what the user can do. */
export class HubError extends EngineError {
  readonly reason: HubErrorReason;
  readonly status: number | null;
  /** true for failures a later retry may cure (network, 5xx, 429) */
  readonly retryable: boolean;

  constructor(
    reason: HubErrorReason,
    message: string,
    details: Record<string, unknown> & { status?: number | null } = {},
  ) {
    super(CODE_OF[reason], message, details);
    this.name = 'HubError';
    this.reason = reason;
    this.status = details.status ?? null;
    this.retryable = reason === 'network' || reason === 'server_error' || reason === 'rate_limited';
  }
}

export function isHubError(e: unknown, reason?: HubErrorReason): e is HubError {
  return e instanceof HubError && (reason === undefined || e.reason === reason);
}

// Hub naming rules (huggingface_hub's validate_repo_id): letters, digits, `-`, `_`, `.`; no `--` or
// `..`; not starting or ending with `-` or `.`; at most 96 characters per part.
const PART = /^(?![.-])(?!.*(?:--|\.\.))[A-Za-z0-9._-]{1,96}(?<![.-])$/;
const REVISION = /^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$/;

export function isRepoId(repo: string): boolean {
  const parts = repo.split('/');
  return parts.length === 2 && parts.every((p) => PART.test(p));
}

export function isRevision(rev: string): boolean {
  return REVISION.test(rev) && !rev.endsWith('/');
}

/** A full 40-hex commit id: immutable, so anything fetched at it can be cached forever. */
export function isCommitSha(rev: string): boolean {
  return /^[0-9a-f]{40}$/.test(rev);
}

/** `owner/name` or `owner/name@revision` → {repo, revision}; throws HubError('bad_repo_id'). */
export function parseHubId(id: string): HubRef {
  const at = id.indexOf('@');
  const repo = at < 0 ? id : id.slice(0, at);
  const revision = at < 0 ? DEFAULT_REVISION : id.slice(at + 1);
  if (!isRepoId(repo)) {
    throw new HubError(
      'bad_repo_id',
      `"${id}" is not a Hub repo id: write owner/name, optionally @revision (e.g. Qwen/Qwen2.5-0.5B-Instruct@main)`,
      { value: id },
    );
  }
  if (!isRevision(revision)) {
    throw new HubError('bad_repo_id', `"${revision}" is not a revision: use a branch, tag or commit id`, {
      value: id,
    });
  }
  return { repo, revision };
}

export function formatHubId(ref: HubRef): string {
  return ref.revision === DEFAULT_REVISION ? ref.repo : `${ref.repo}@${ref.revision}`;
}

/**
 * A URL in the Hub's layout → endpoint + repo + revision: `<endpoint>/<owner>/<name>`,
 * `…/tree/<rev>`, `…/resolve/<rev>[/]`. Null for anything else (then it is a plain folder URL).
 */
export function parseHubUrl(url: string): ({ endpoint: string } & HubRef) | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  if (u.search || u.hash || u.username || u.password) return null;
  const segs = u.pathname.split('/').filter((s) => s !== '');
  let decoded: string[];
  try {
    decoded = segs.map((s) => decodeURIComponent(s));
  } catch {
    return null;
  }
  // NOTE: an endpoint may itself sit under a path (a mirror at https://host/hf); only the last 2 or 4
  // segments are the repo part, so try the longest known shapes first.
  const tries: { at: number; rev: string | null }[] = [];
  if (
    decoded.length >= 4 &&
    (decoded[decoded.length - 2] === 'resolve' || decoded[decoded.length - 2] === 'tree')
  )
    tries.push({ at: decoded.length - 4, rev: decoded[decoded.length - 1] });
  if (decoded.length >= 2) tries.push({ at: decoded.length - 2, rev: null });
  for (const t of tries) {
    const repo = `${decoded[t.at]}/${decoded[t.at + 1]}`;
    if (!isRepoId(repo)) continue;
    if (['api', 'resolve', 'tree', 'datasets', 'spaces'].includes(decoded[t.at])) continue;
    const revision = t.rev ?? DEFAULT_REVISION;
    if (!isRevision(revision)) continue;
    const prefix = segs.slice(0, t.at).join('/');
    return { endpoint: `${u.origin}${prefix ? `/${prefix}` : ''}`, repo, revision };
  }
  return null;
}

/** One file of a repo as the model-info API lists it. */
export interface HubFileInfo {
  path: string;
  /** bytes, when the API reported it (`?blobs=true`) */
  size: number | null;
  /** sha256 of an LFS file's content */
  sha256: string | null;
}

export type GatedMode = false | 'auto' | 'manual';

/** What the model-info API says about a repo at a revision. */
export interface RepoInfo {
  repo: string;
  /** the revision asked for */
  revision: string;
  /** the commit it resolved to (files are cached under this), null when the Hub did not say */
  commit: string | null;
  gated: GatedMode;
  private: boolean;
  files: HubFileInfo[];
}

/** Where token access is asked for, and where tokens are made. */
export function repoPage(endpoint: string, repo: string): string {
  return `${endpoint}/${repo}`;
}

export type TokenInput = string | null | undefined | (() => string | null | undefined);

export interface HubClientOptions {
  /** default the public Hub; a mirror or the test server otherwise */
  endpoint?: string;
  /** bearer token (or a getter, so a token pasted later is used at once); only sent to `endpoint` */
  token?: TokenInput;
  /** injected for tests and hosts with their own fetch; default globalThis.fetch */
  fetch?: typeof fetch;
  /** first-byte and idle-body limits of every request (defaults: 30 s, 60 s) */
  timeouts?: HttpTimeouts;
}

interface ErrorContext {
  repo: string;
  revision: string;
  file?: string;
}

/** A URL for a message: no query (a CDN URL's signature) and no credentials. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(a URL)';
  }
}

/** Replaces anything that looks like a Hugging Face token (and `token` itself) with `hf_***`. */
export function redactToken(text: string, token?: string | null): string {
  let out = text;
  if (token && token.length >= 4) out = out.split(token).join('hf_***');
  return out.replace(/\bhf_[A-Za-z0-9]{8,}\b/g, 'hf_***').replace(/(Bearer\s+)\S+/gi, '$1***');
}

export class HubClient {
  readonly endpoint: string;
  /** the endpoint's origin: where the token may go, and part of every download-cache key */
  readonly origin: string;
  private readonly tokenInput: TokenInput;
  private readonly doFetch: typeof fetch;
  private readonly timeouts: HttpTimeouts;

  constructor(opts: HubClientOptions = {}) {
    this.endpoint = (opts.endpoint ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
    let origin: string;
    try {
      origin = new URL(this.endpoint).origin;
    } catch {
      throw new HubError('bad_repo_id', `"${this.endpoint}" is not a Hub endpoint URL`, {
        value: this.endpoint,
      });
    }
    this.origin = origin;
    this.tokenInput = opts.token;
    this.timeouts = opts.timeouts ?? {};
    this.doFetch =
      opts.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init));
  }

  private token(): string | null {
    const t = typeof this.tokenInput === 'function' ? this.tokenInput() : this.tokenInput;
    return t ? t.trim() || null : null;
  }

  hasToken(): boolean {
    return this.token() !== null;
  }

  /** `${endpoint}/${repo}/resolve/${revision}/${file}`, each part URL-encoded. */
  fileUrl(repo: string, revision: string, file: string): string {
    const enc = (p: string) => p.split('/').map(encodeURIComponent).join('/');
    return `${this.endpoint}/${enc(repo)}/resolve/${encodeURIComponent(revision)}/${enc(file)}`;
  }

  infoUrl(repo: string, revision: string): string {
    const enc = (p: string) => p.split('/').map(encodeURIComponent).join('/');
    return `${this.endpoint}/api/models/${enc(repo)}/revision/${encodeURIComponent(revision)}?blobs=true`;
  }

  /** Request headers for `url`: the bearer token only when `url` is on the endpoint's origin. */
  headersFor(url: string, extra: Record<string, string> = {}): Record<string, string> {
    const token = this.token();
    let sameOrigin = false;
    try {
      sameOrigin = new URL(url).origin === this.origin;
    } catch {
      sameOrigin = false;
    }
    return token && sameOrigin ? { ...extra, Authorization: `Bearer ${token}` } : { ...extra };
  }

  /**
   * A GET (or HEAD) to the Hub with the token, under the first-byte and idle-body limits; network
   * failures and timeouts become HubError('network') (the body's idle timeout surfaces when it is
   * read), a redirect loop HubError('redirect_loop'); HTTP failures are returned as they are
   * (callers turn them into errors with `errorFor`).
   */
  async request(
    url: string,
    init: { method?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<Response> {
    try {
      return await fetchWithTimeouts(
        this.doFetch,
        url,
        {
          method: init.method ?? 'GET',
          headers: this.headersFor(url, init.headers),
          signal: init.signal,
          redirect: 'follow',
        },
        this.timeouts,
      );
    } catch (e) {
      if (init.signal?.aborted) throw abortError();
      const limit = classifyFetchFailure(e);
      if (limit?.kind === 'redirect_loop')
        throw new HubError('redirect_loop', `${redactUrl(url)}: ${limit.message}`, { url: redactUrl(url) });
      if (limit)
        throw new HubError(
          'network',
          `${redactUrl(url)}: ${limit.message}; check the connection (files already downloaded stay in the cache)`,
          { url: redactUrl(url), timeout: limit.kind },
        );
      throw new HubError(
        'network',
        `could not reach ${this.endpoint} (${redactToken(String(e), this.token())}): check the connection; files already downloaded stay in the cache`,
        { url },
      );
    }
  }

  /** Turns a non-OK response into the HubError that says what to do. */
  errorFor(res: Response, ctx: ErrorContext): HubError {
    const code = res.headers.get('X-Error-Code') ?? '';
    const hadToken = this.hasToken();
    const page = repoPage(this.endpoint, ctx.repo);
    const what = ctx.file ? `${ctx.file} of ${ctx.repo}` : ctx.repo;
    const details = {
      status: res.status,
      repo: ctx.repo,
      revision: ctx.revision,
      file: ctx.file,
      errorCode: code || null,
    };
    const s = res.status;
    if (
      code === 'GatedRepo' ||
      (s === 403 && /gated|restricted/i.test(res.headers.get('X-Error-Message') ?? ''))
    ) {
      return hadToken
        ? new HubError(
            'gated_no_access',
            `${ctx.repo} is gated and this token's account has no access yet: open ${page}, accept the license (approval can take a while), then retry with a token of that account`,
            details,
          )
        : new HubError(
            'gated',
            `${ctx.repo} is gated: accept its license on the Hub (${page}) and paste a read token (${this.endpoint}/settings/tokens); the token stays in this session and never goes into links or specs`,
            details,
          );
    }
    if (code === 'RevisionNotFound') {
      return new HubError(
        'revision_not_found',
        `${ctx.repo} has no revision "${ctx.revision}": check the @revision (a branch, tag or commit id)`,
        details,
      );
    }
    if (code === 'EntryNotFound' || (s === 404 && ctx.file && code !== 'RepoNotFound')) {
      return new HubError(
        'entry_not_found',
        `${ctx.repo}@${ctx.revision} has no file ${ctx.file ?? ''}: the repo may not be in the expected layout (a model needs config.json + safetensors, an adapter adapter_config.json + adapter_model.safetensors)`,
        { ...details, file: ctx.file ?? null, source: ctx.repo },
      );
    }
    if (s === 401 && hadToken && code !== 'RepoNotFound') {
      return new HubError(
        'bad_token',
        `${this.endpoint} rejected the token (expired, revoked or mistyped): create a read token at ${this.endpoint}/settings/tokens and paste it again`,
        details,
      );
    }
    if (s === 404 || code === 'RepoNotFound' || (s === 401 && !hadToken)) {
      return new HubError(
        'repo_not_found',
        hadToken || s === 404
          ? `${ctx.repo} was not found on ${this.endpoint}: check the spelling of owner/name (case matters)${hadToken ? '; if it is private, use a token of an account that can read it' : ''}`
          : `${ctx.repo} was not found on ${this.endpoint}, or it is private: check the spelling of owner/name; for a private or gated repo, paste a read token`,
        details,
      );
    }
    if (s === 403) {
      return new HubError(
        'forbidden',
        `the token may not read ${ctx.repo}: use a read token, or give a fine-grained token read access to this repo (${this.endpoint}/settings/tokens)`,
        details,
      );
    }
    if (s === 429) {
      return new HubError(
        'rate_limited',
        `${this.endpoint} is rate-limiting requests for ${what}: wait a minute and retry${hadToken ? '' : ', or paste a token (signed-in requests get higher limits)'}`,
        details,
      );
    }
    if (s >= 500) {
      return new HubError(
        'server_error',
        `${this.endpoint} answered HTTP ${s} for ${what}: the Hub may be having trouble; retry later (finished files stay in the cache)`,
        details,
      );
    }
    return new HubError('bad_response', `${this.endpoint} answered HTTP ${s} for ${what}`, details);
  }

  /** The model-info API: the repo's files (with sizes) at `revision`, and the commit it resolves to. */
  async modelInfo(repo: string, revision = DEFAULT_REVISION, signal?: AbortSignal): Promise<RepoInfo> {
    if (!isRepoId(repo)) parseHubId(repo);
    const res = await this.request(this.infoUrl(repo, revision), { signal });
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw this.errorFor(res, { repo, revision });
    }
    let text: string;
    try {
      const bytes = await readCapped(
        res,
        MODEL_INFO_LIMIT,
        () =>
          new HubError(
            'too_large',
            `model info for ${repo} is over the ${MODEL_INFO_LIMIT / 1024 / 1024}.0 MiB limit: ${this.endpoint} does not answer like the Hub`,
            { repo, limit: MODEL_INFO_LIMIT },
          ),
      );
      text = new TextDecoder().decode(bytes);
    } catch (e) {
      if (signal?.aborted) throw abortError();
      if (isHubError(e)) throw e;
      throw new HubError(
        'network',
        `${redactUrl(this.infoUrl(repo, revision))}: the connection broke while reading the file list (${String(e)})`,
        { repo },
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new HubError('bad_response', `${this.infoUrl(repo, revision)}: not JSON (${String(e)})`, {});
    }
    return parseModelInfo(json, repo, revision);
  }
}

export function abortError(): HubError {
  return new HubError('aborted', 'cancelled', {});
}

/** The model-info JSON (`siblings[].rfilename`, `size`, `lfs.sha256`, `sha`, `gated`) → RepoInfo. */
export function parseModelInfo(json: unknown, repo: string, revision: string): RepoInfo {
  if (!isObject(json) || !Array.isArray(json.siblings)) {
    throw new HubError('bad_response', `model info for ${repo}: no file list (siblings)`, { repo });
  }
  const files: HubFileInfo[] = [];
  for (const s of json.siblings) {
    if (!isObject(s) || typeof s.rfilename !== 'string') continue;
    const path = s.rfilename;
    if (path.split('/').some((p) => p === '' || p === '.' || p === '..')) continue;
    const lfs = isObject(s.lfs) ? s.lfs : null;
    const sizeRaw =
      typeof s.size === 'number' ? s.size : lfs && typeof lfs.size === 'number' ? lfs.size : null;
    const size = sizeRaw !== null && Number.isSafeInteger(sizeRaw) && sizeRaw >= 0 ? sizeRaw : null;
    const sha256 =
      lfs && typeof lfs.sha256 === 'string' && /^[0-9a-f]{64}$/.test(lfs.sha256) ? lfs.sha256 : null;
    files.push({ path, size, sha256 });
  }
  const sha = typeof json.sha === 'string' && isCommitSha(json.sha) ? json.sha : null;
  const gated: GatedMode = json.gated === 'auto' || json.gated === 'manual' ? json.gated : false;
  return { repo, revision, commit: sha, gated, private: json.private === true, files };
}
