// Share links: an experiment spec ↔ a URL fragment `#spec=v1.<payload>`, where payload is the spec's
// canonical JSON, raw-deflated (fflate) and base64url-encoded. The fragment never reaches a server.
// It must never carry results, tokens or keys (a spec has no place for them, and strings that look like
// credentials are refused, never stripped), never throw on any input, and never inflate without a bound.

import { deflateSync, Inflate } from 'fflate';
import { errorMessage } from '../../common/errors';
import { canonicalJson, parseSpec, type ExperimentSpec } from './experiment';

export const LINK_PARAM = 'spec';
export const LINK_FORMAT = 'v1';
/** Longest base64url payload accepted or produced (fits every browser's and chat app's URL limits). */
export const MAX_PAYLOAD_CHARS = 8192;
/** Largest spec JSON, in UTF-8 bytes, produced or inflated (the zip-bomb bound). */
export const MAX_JSON_BYTES = 65536;

export type LinkErrorCode =
  | 'not-a-link'
  | 'unsupported-format'
  | 'too-large'
  | 'bad-encoding'
  | 'bad-compression'
  | 'bad-json'
  | 'invalid-spec'
  | 'secret';

export interface LinkError {
  code: LinkErrorCode;
  message: string;
  /** For 'invalid-spec' and 'secret': one message per problem, each naming its path. */
  issues?: string[];
}

export type EncodeResult =
  { ok: true; url: string; fragment: string; payloadChars: number } | { ok: false; error: LinkError };

export type DecodeResult = { ok: true; spec: ExperimentSpec } | { ok: false; error: LinkError };

function fail(code: LinkErrorCode, message: string, issues?: string[]): { ok: false; error: LinkError } {
  return { ok: false, error: issues ? { code, message, issues } : { code, message } };
}

// ---------------------------------------------------------------------------------------------------
// Credentials: refuse strings that look like access tokens or keys anywhere in a spec.

// NOTE: no \b around the tokens: `_` is a word character, so `token_hf_…` or `hf_…_x` has no word
// boundary where the token starts or ends. A token is refused wherever it sits, glued to `_`, `-`,
// `=` or `/`; only a letter or digit right before `sk-`/`gh?_`/`AKIA` rules it out (`task-…`, `risk-…`).
const SECRET_PATTERNS: readonly [string, RegExp][] = [
  ['a Hugging Face token', /hf_[A-Za-z0-9]{30,}/],
  ['an OpenAI-style API key', /(?<![A-Za-z0-9])sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{20,}/],
  ['a GitHub token', /(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})/],
  ['an AWS access key', /(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])/],
  ['a JSON Web Token', /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/],
  ['a bearer token', /\bBearer\s+[A-Za-z0-9._~+/-]{16,}/i],
  ['a private key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
];

/** Paths of strings (values or keys) in `value` that look like credentials, with what they look like. */
export function findSecrets(value: unknown, path = 'spec'): string[] {
  const found: string[] = [];
  const visit = (v: unknown, p: string) => {
    if (typeof v === 'string') {
      for (const [what, re] of SECRET_PATTERNS) if (re.test(v)) found.push(`${p}: looks like ${what}`);
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => visit(x, `${p}[${i}]`));
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        visit(k, `${p} (key)`);
        visit(x, `${p}.${k}`);
      }
    }
  };
  visit(value, path);
  return found;
}

// ---------------------------------------------------------------------------------------------------
// base64url without padding.

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

export function base64urlEncode(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += B64[n >> 18] + B64[(n >> 12) & 63];
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63];
  }
  return out;
}

/** Strict: null for any character outside the alphabet, padding, or an impossible length. */
export function base64urlDecode(text: string): Uint8Array | null {
  if (text.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? B64_INDEX[c] : -1;
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  // NOTE: leftover bits must be zero, so each byte string has exactly one encoding.
  if ((acc & ((1 << bits) - 1)) !== 0) return null;
  return out.subarray(0, o);
}

// ---------------------------------------------------------------------------------------------------

/** Inflate raw DEFLATE, giving up as soon as the output passes `limit` bytes. */
function boundedInflate(data: Uint8Array, limit: number): Uint8Array | 'too-large' | 'bad' {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let over = false;
  let finished = false;
  const inflater = new Inflate((chunk, final) => {
    total += chunk.length;
    if (total > limit) over = true;
    else chunks.push(chunk);
    if (final) finished = true;
  });
  try {
    // NOTE: small input slices keep each push's output small, so a bomb is caught early.
    const step = 256;
    for (let i = 0; i < data.length && !over; i += step) {
      const end = Math.min(i + step, data.length);
      inflater.push(data.subarray(i, end), end === data.length);
    }
    if (data.length === 0) inflater.push(data, true);
  } catch {
    return over ? 'too-large' : 'bad';
  }
  if (over) return 'too-large';
  if (!finished) return 'bad';
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Only the `#spec=…` part of a link, e.g. to put in `location.hash`. */
export function encodeFragment(
  spec: unknown,
): { ok: true; fragment: string; payloadChars: number } | { ok: false; error: LinkError } {
  const parsed = parseSpec(spec);
  if (!parsed.ok) return fail('invalid-spec', 'the spec is not valid', parsed.errors);
  const secrets = findSecrets(parsed.spec);
  if (secrets.length > 0)
    return fail('secret', 'the spec contains what looks like a credential; refused', secrets);
  const json = utf8.encode(canonicalJson(parsed.spec));
  if (json.length > MAX_JSON_BYTES)
    return fail(
      'too-large',
      `the spec is ${json.length} bytes of JSON; links hold at most ${MAX_JSON_BYTES}`,
    );
  const payload = base64urlEncode(deflateSync(json, { level: 9 }));
  if (payload.length > MAX_PAYLOAD_CHARS)
    return fail('too-large', `the link would be ${payload.length} characters; at most ${MAX_PAYLOAD_CHARS}`);
  return { ok: true, fragment: `#${LINK_PARAM}=${LINK_FORMAT}.${payload}`, payloadChars: payload.length };
}

/** A share link: `baseUrl` (any fragment replaced) + `#spec=v1.<payload>`. */
export function encodeLink(spec: unknown, baseUrl: string): EncodeResult {
  const frag = encodeFragment(spec);
  if (!frag.ok) return frag;
  const hash = baseUrl.indexOf('#');
  const base = hash >= 0 ? baseUrl.slice(0, hash) : baseUrl;
  return { ok: true, url: base + frag.fragment, fragment: frag.fragment, payloadChars: frag.payloadChars };
}

/**
 * Read a spec from a full URL, a fragment (`#spec=…`) or a bare `spec=…` parameter. Never throws; every
 * failure is a typed error. Older spec versions are migrated forward.
 */
export function decodeLink(urlOrFragment: unknown): DecodeResult {
  try {
    if (typeof urlOrFragment !== 'string') return fail('not-a-link', 'expected a link as text');
    if (urlOrFragment.length > MAX_PAYLOAD_CHARS + 8192)
      return fail('too-large', `the link is ${urlOrFragment.length} characters; too long to be a spec link`);
    const hash = urlOrFragment.indexOf('#');
    const fragment = hash >= 0 ? urlOrFragment.slice(hash + 1) : urlOrFragment;
    const param = fragment.split('&').find((p) => p.startsWith(`${LINK_PARAM}=`));
    if (param === undefined) return fail('not-a-link', `no "#${LINK_PARAM}=" in the link`);
    const value = param.slice(LINK_PARAM.length + 1);
    const dot = value.indexOf('.');
    const format = dot >= 0 ? value.slice(0, dot) : '';
    if (format !== LINK_FORMAT) {
      const newer = /^v(\d{1,6})$/.exec(format);
      return fail(
        'unsupported-format',
        newer && Number(newer[1]) > 1
          ? `this link was made by a newer release (link format ${format}); this one reads ${LINK_FORMAT}`
          : `unknown link format "${format.slice(0, 16)}"; expected ${LINK_FORMAT}`,
      );
    }
    const payload = value.slice(dot + 1);
    if (payload.length > MAX_PAYLOAD_CHARS)
      return fail(
        'too-large',
        `the link payload is ${payload.length} characters; at most ${MAX_PAYLOAD_CHARS}`,
      );
    const bytes = base64urlDecode(payload);
    if (bytes === null)
      return fail('bad-encoding', 'the link payload is not base64url (damaged or cut short?)');
    const inflated = boundedInflate(bytes, MAX_JSON_BYTES);
    if (inflated === 'too-large')
      return fail('too-large', `the link expands past ${MAX_JSON_BYTES} bytes; refused`);
    if (inflated === 'bad')
      return fail('bad-compression', 'the link payload does not decompress (damaged or cut short?)');
    let text: string;
    try {
      text = strictUtf8.decode(inflated);
    } catch {
      return fail('bad-encoding', 'the link does not hold UTF-8 text');
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return fail('bad-json', 'the link does not hold JSON');
    }
    const parsed = parseSpec(json);
    if (!parsed.ok) return fail('invalid-spec', 'the link holds an invalid spec', parsed.errors);
    const secrets = findSecrets(parsed.spec);
    if (secrets.length > 0)
      return fail('secret', 'the link contains what looks like a credential; refused', secrets);
    return { ok: true, spec: parsed.spec };
  } catch (e) {
    return fail('bad-json', `the link could not be read (${errorMessage(e)})`);
  }
}
