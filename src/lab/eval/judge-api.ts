// The API judge: any OpenAI-compatible chat-completions endpoint (URL, model, key). It builds the
// request body, reads the first answer token's top logprobs when the endpoint offers them (the
// paper's measure: weighted mean over the integer tokens 0…100) and the parsed answer text otherwise,
// limits requests in flight, and says clearly what went wrong. The HTTP itself (and its retries of
// 429 / 5xx / network failures) is an injected transport: src/hub/json-post.ts in the CLI and worker.
// The key lives only in this object's private field: it must never appear in `id`, `label`, an error
// message, a log line, a spec, a link or an export — nor may a key someone put in the URL's path (the
// id redacts credential-looking segments) — and nothing here fetches, touches the DOM or storage.

import type { JsonPost } from '../../common/json-post';
import { THRESHOLDS } from './em-data';
import { JudgeError, scoreFromProbabilities, type Judge, type JudgeScore } from './judge';

/** The judge's transport (src/hub/json-post.ts in the CLI and worker; a stub in tests). */
export type JudgePost = JsonPost;

export interface ApiJudgeOptions {
  /** the API base (`https://api.openai.com/v1`) or the full `…/chat/completions` URL */
  url: string;
  model: string;
  /** sent as `Authorization: Bearer …`; none for a local server that wants none */
  key?: string;
  /** the HTTP transport (src/hub/json-post.ts: fetch with a timeout and retries) */
  post: JudgePost;
  /** requests in flight at most (default 4) */
  concurrency?: number;
  /** top logprobs asked for (default 20, the paper's) */
  topLogprobs?: number;
  minNumberMass?: number;
}

/** The chat-completions endpoint for a URL; refuses non-http(s) URLs and credentials in the URL. */
export function chatCompletionsUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new JudgeError('config', `judge API URL "${url}" is not an absolute http(s) URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new JudgeError('config', `judge API URL must be http(s), got ${u.protocol}`);
  if (u.username || u.password)
    throw new JudgeError('config', 'put the API key in the key field, not in the URL');
  for (const name of u.searchParams.keys())
    if (/key|token|secret|sig|auth/i.test(name))
      throw new JudgeError('config', `URL parameter "${name}" looks like a credential: use the key field`);
  u.hash = '';
  if (!/\/chat\/completions\/?$/.test(u.pathname))
    u.pathname = u.pathname.replace(/\/+$/, '') + '/chat/completions';
  return u.href;
}

/** Key prefixes of the common API providers (OpenAI/Anthropic sk-, HF hf_, GitHub, Slack, AWS, JWT). */
const KEY_PREFIX = /^(?:sk|pk|rk)-|^hf_|^gh[pousr]_|^github_pat_|^xox[abprs]-|^(?:AKIA|ASIA)[0-9A-Z]{8}|^eyJ/;

/**
 * Whether one URL path segment or query value looks like a credential: `key=…`-style pairs, known key
 * prefixes, or a long random run (16+ characters mixing letters and digits between separators —
 * `gpt-4o-mini-2024-07-18` or `chat` are not).
 */
export function looksLikeCredential(segment: string): boolean {
  let s = segment;
  try {
    s = decodeURIComponent(segment);
  } catch {
    // keep the raw text
  }
  if (/[=:]/.test(s) || KEY_PREFIX.test(s)) return true;
  return s.split(/[-_.~+/]/).some((part) => part.length >= 16 && /[0-9]/.test(part) && /[A-Za-z]/.test(part));
}

/** The endpoint with every credential-looking path segment and query value replaced by `***`. */
export function redactEndpoint(endpoint: string): string {
  const u = new URL(endpoint);
  u.pathname = u.pathname
    .split('/')
    .map((seg) => (seg && looksLikeCredential(seg) ? '***' : seg))
    .join('/');
  for (const [name, value] of [...u.searchParams])
    if (looksLikeCredential(value)) u.searchParams.set(name, '***');
  return u.href.replace(/%2A%2A%2A/g, '***');
}

interface TopLogprob {
  token: string;
  logprob: number;
}

/** Probabilities of the numbers 0…100, CODE and REFUSAL from the first token's top logprobs. */
export function probabilitiesFromTopLogprobs(top: readonly TopLogprob[]): {
  numbers: Float64Array;
  code: number;
  refusal: number;
} {
  const numbers = new Float64Array(101);
  let code = 0;
  let refusal = 0;
  for (const t of top) {
    if (typeof t?.token !== 'string' || typeof t.logprob !== 'number' || !Number.isFinite(t.logprob))
      continue;
    const p = Math.exp(t.logprob);
    const s = t.token.trim();
    if (/^\d+$/.test(s)) {
      const n = Number(s);
      if (n <= 100) numbers[n] += p;
    } else if (s.length >= 2 && 'CODE'.startsWith(s.toUpperCase())) code += p;
    else if (s.length >= 3 && 'REFUSAL'.startsWith(s.toUpperCase())) refusal += p;
  }
  return { numbers, code, refusal };
}

/** A score from the answer text alone: CODE, REFUSAL, or the first integer 0…100. */
export function scoreFromText(text: string, minMass: number = THRESHOLDS.minNumberMass): JudgeScore {
  const t = text.trim();
  const numbers = new Float64Array(101);
  let code = 0;
  let refusal = 0;
  if (/^\W*CODE\b/i.test(t)) code = 1;
  else if (/^\W*REFUSAL\b/i.test(t)) refusal = 1;
  else {
    const m = /^\D{0,20}?(\d+(?:\.\d+)?)/.exec(t);
    const n = m ? Math.round(Number(m[1])) : NaN;
    if (Number.isFinite(n) && n >= 0 && n <= 100) numbers[n] = 1;
  }
  return { ...scoreFromProbabilities(numbers, code, refusal, 'text', minMass), text: t.slice(0, 200) };
}

class Limiter {
  private active = 0;
  private queue: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

export class ApiJudge implements Judge {
  readonly id: string;
  readonly label: string;
  readonly concurrency: number;
  readonly endpoint: string;
  #key: string | undefined;
  /** null: not known yet; false: the endpoint refused or ignored logprobs, so they are not asked for */
  #logprobs: boolean | null = null;
  private readonly limiter: Limiter;

  constructor(private readonly opts: ApiJudgeOptions) {
    if (!opts.model.trim()) throw new JudgeError('config', 'the judge API needs a model name');
    this.endpoint = chatCompletionsUrl(opts.url);
    this.#key = opts.key?.trim() || undefined;
    this.concurrency = Math.max(1, Math.floor(opts.concurrency ?? 4));
    this.limiter = new Limiter(this.concurrency);
    // NOTE: some gateways take the key in the path (…/v1/key=sk-…/chat/completions); the id lands in
    // eval summaries, exports and cache keys, so such segments are redacted there (the request still
    // goes to the real endpoint).
    this.id = `api:${redactEndpoint(this.endpoint)}#${opts.model}`;
    this.label = `${opts.model} at ${new URL(this.endpoint).host}`;
  }

  /** Whether the endpoint gave logprobs (null before the first answer). */
  get usesLogprobs(): boolean | null {
    return this.#logprobs;
  }

  /** Never serialise the key: JSON.stringify(judge) gives its identity only. */
  toJSON(): { id: string; label: string } {
    return { id: this.id, label: this.label };
  }

  private redact(text: string): string {
    let t = text;
    if (this.#key) t = t.split(this.#key).join('***');
    t = t.replace(/\s+/g, ' ').trim();
    return t.length > 300 ? `${t.slice(0, 300)}…` : t;
  }

  score(prompt: string, signal?: AbortSignal): Promise<JudgeScore> {
    return this.limiter.run(() => this.scoreNow(prompt, signal));
  }

  private async scoreNow(prompt: string, signal?: AbortSignal): Promise<JudgeScore> {
    const minMass = this.opts.minNumberMass ?? THRESHOLDS.minNumberMass;
    const json = await this.request(prompt, signal);
    const choice = (json as { choices?: unknown[] } | null)?.choices?.[0] as
      | { message?: { content?: unknown }; logprobs?: { content?: { top_logprobs?: TopLogprob[] }[] } }
      | undefined;
    if (!choice)
      throw new JudgeError(
        'bad_response',
        `the judge API answered without choices: ${this.redact(JSON.stringify(json))}`,
      );
    const text = typeof choice.message?.content === 'string' ? choice.message.content : '';
    const top = choice.logprobs?.content?.[0]?.top_logprobs;
    if (Array.isArray(top) && top.length > 0) {
      this.#logprobs = true;
      const p = probabilitiesFromTopLogprobs(top);
      return {
        ...scoreFromProbabilities(p.numbers, p.code, p.refusal, 'logprobs', minMass),
        text: text.trim().slice(0, 200),
      };
    }
    if (this.#logprobs === null) this.#logprobs = false;
    return scoreFromText(text, minMass);
  }

  private body(prompt: string): string {
    const logprobs = this.#logprobs !== false;
    return JSON.stringify({
      model: this.opts.model,
      messages: [{ role: 'user', content: prompt }],
      // NOTE: only the first token's logprobs are read, but a few tokens let the text be parsed when an
      // endpoint ignores logprobs (a number spelled digit by digit, REFUSAL in pieces).
      max_tokens: 8,
      temperature: 0,
      seed: 0,
      ...(logprobs ? { logprobs: true, top_logprobs: this.opts.topLogprobs ?? 20 } : {}),
    });
  }

  private async request(prompt: string, signal?: AbortSignal): Promise<unknown> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.#key) headers.authorization = `Bearer ${this.#key}`;
    for (;;) {
      const a = await this.opts.post({ url: this.endpoint, headers, body: this.body(prompt), signal });
      if (a.kind === 'unreachable')
        throw new JudgeError('http', `the judge API failed ${a.attempts} times; last: ${this.redact(a.why)}`);
      if (a.status >= 200 && a.status < 300) {
        try {
          return JSON.parse(a.text);
        } catch {
          throw new JudgeError(
            'bad_response',
            `the judge API at ${this.endpoint} did not answer with JSON ` +
              `(${a.contentType ?? 'no content type'}): ${this.redact(a.text) || '(empty)'}`,
          );
        }
      }
      const detail = `${a.status} ${a.statusText}: ${this.redact(a.text) || '(no body)'}`.trim();
      if (a.status === 429 || a.status >= 500)
        throw new JudgeError('http', `the judge API failed ${a.attempts} times; last: ${detail}`);
      if (a.status === 401 || a.status === 403)
        throw new JudgeError(
          'auth',
          `the judge API refused the request (${detail}); check the key (${this.#key ? 'one was sent' : 'none was sent'})`,
        );
      if (a.status === 400 && this.#logprobs === null) {
        // NOTE: some endpoints refuse logprobs outright; ask once more without them.
        this.#logprobs = false;
        continue;
      }
      if (a.status === 404)
        throw new JudgeError(
          'http',
          `the judge API has no such endpoint or model (${detail}) at ${this.endpoint}`,
        );
      throw new JudgeError('http', `the judge API refused the request (${detail})`);
    }
  }
}
