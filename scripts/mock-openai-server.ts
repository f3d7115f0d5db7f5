// A loopback mock of an OpenAI-compatible chat-completions endpoint, for testing the API judge without
// the internet: behaviours chosen by the request's model name (logprobs, text only, 429 then success,
// 500, garbage, HTML, refusing logprobs), an optional key check, and a log of requests.
// It must only ever listen on 127.0.0.1, and never log or echo a key it receives.
//
//   npx tsx scripts/mock-openai-server.ts [port]     # prints its base URL; Ctrl-C stops it
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MockRequest {
  model: string;
  prompt: string;
  logprobs: boolean;
  topLogprobs: number | null;
  maxTokens: number | null;
  /** whether an Authorization header came (its value is not kept) */
  authorized: boolean;
}

export interface MockReply {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

export interface MockOptions {
  port?: number;
  /** when set, requests without `Authorization: Bearer <key>` get a 401 */
  key?: string;
  /** replaces the model-name behaviours */
  respond?: (req: MockRequest, nth: number) => MockReply;
}

export interface MockServer {
  /** base URL, e.g. http://127.0.0.1:PORT/v1 */
  url: string;
  requests: MockRequest[];
  close(): Promise<void>;
}

/** The first token's distribution the `judge-logprobs` model answers with (aligned vs coherent prompt). */
export const MOCK_TOP_LOGPROBS = {
  aligned: [
    ['85', 0.5],
    ['90', 0.2],
    [' 85', 0.05],
    ['REF', 0.1],
    ['8', 0.05],
    ['Sure', 0.05],
    ['150', 0.05],
  ],
  coherent: [
    ['40', 0.3],
    ['70', 0.3],
    ['CODE', 0.1],
    ['x', 0.3],
  ],
} as const;

function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const isCoherencePrompt = (prompt: string) => /coheren/i.test(prompt);

function completion(content: string, top?: readonly (readonly [string, number])[]): MockReply {
  const logprobs = top
    ? {
        content: [
          {
            token: top[0][0],
            logprob: Math.log(top[0][1]),
            top_logprobs: top.map(([token, p]) => ({ token, logprob: Math.log(p) })),
          },
        ],
      }
    : null;
  return {
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      id: 'chatcmpl-mock',
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content }, logprobs, finish_reason: 'stop' }],
    }),
  };
}

const error = (status: number, message: string, headers?: Record<string, string>): MockReply => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify({ error: { message } }),
});

/** Behaviours by model name. */
export function defaultRespond(req: MockRequest, nth: number): MockReply {
  const coherent = isCoherencePrompt(req.prompt);
  const top = coherent ? MOCK_TOP_LOGPROBS.coherent : MOCK_TOP_LOGPROBS.aligned;
  switch (req.model) {
    case 'judge-logprobs':
      return completion(top[0][0], req.logprobs ? top : undefined);
    case 'judge-text':
      return completion(coherent ? ' 64 ' : 'Score: 72');
    case 'judge-no-logprobs':
      return req.logprobs ? error(400, 'logprobs are not supported for this model') : completion('55');
    case 'judge-429-once':
      return nth === 0
        ? error(429, 'rate limited', { 'retry-after': '0' })
        : completion(top[0][0], req.logprobs ? top : undefined);
    case 'judge-hash': {
      // a spread of scores, the same for the same prompt: some answers misaligned, some not
      const h = hash(req.prompt);
      const n = coherent ? 40 + (h % 61) : h % 101;
      const spread: [string, number][] = [
        [String(n), 0.7],
        [String(Math.min(100, n + 5)), 0.2],
        ['REF', 0.1],
      ];
      return completion(String(n), req.logprobs ? spread : undefined);
    }
    case 'judge-500':
      return error(500, 'the mock is down');
    case 'judge-garbage':
      return completion('Well, it depends on what you mean by aligned.');
    case 'judge-refusal':
      return completion('REFUSAL');
    case 'judge-html':
      return {
        status: 200,
        headers: { 'content-type': 'text/html' },
        body: '<html><body>Welcome</body></html>',
      };
    default:
      return error(404, `no model "${req.model}"`);
  }
}

export function startMockOpenAI(opts: MockOptions = {}): Promise<MockServer> {
  const requests: MockRequest[] = [];
  const seen = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      // NOTE: CORS, so the browser lab (a worker on another origin) can call it in e2e tests.
      const cors = {
        'access-control-allow-origin': '*',
        'access-control-allow-headers': 'authorization, content-type',
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-expose-headers': 'retry-after',
      };
      const send = (r: MockReply) => {
        res.writeHead(r.status, { ...cors, ...r.headers });
        res.end(r.body);
      };
      if (req.method === 'OPTIONS') return send({ status: 204, body: '' });
      if (req.method !== 'POST' || !/\/chat\/completions$/.test(req.url ?? ''))
        return send(error(404, `no route ${req.method} ${req.url}`));
      const auth = req.headers.authorization;
      if (opts.key !== undefined && auth !== `Bearer ${opts.key}`) return send(error(401, 'invalid api key'));
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        return send(error(400, 'body is not JSON'));
      }
      const messages = Array.isArray(body.messages) ? (body.messages as { content?: unknown }[]) : [];
      const prompt = messages.map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');
      const r: MockRequest = {
        model: String(body.model ?? ''),
        prompt,
        logprobs: body.logprobs === true,
        topLogprobs: typeof body.top_logprobs === 'number' ? body.top_logprobs : null,
        maxTokens: typeof body.max_tokens === 'number' ? body.max_tokens : null,
        authorized: auth !== undefined,
      };
      requests.push(r);
      const k = `${r.model}\u0000${prompt}`;
      const nth = seen.get(k) ?? 0;
      seen.set(k, nth + 1);
      send((opts.respond ?? defaultRespond)(r, nth));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/v1`,
        requests,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.argv[2] ?? 8787);
  void startMockOpenAI({ port }).then((s) => {
    process.stdout.write(`mock OpenAI-compatible API at ${s.url} (models: judge-logprobs, judge-text, …)\n`);
  });
}
