// The engine worker's message loop (engine.worker.ts) in Node: a fake worker scope, real Labs on
// onnxruntime-node, fixture models handed over as picked folders. A model pair whose config or chat
// template fails must come back as an error response, and leave the previous pair loaded and usable.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { defaultSpec, type ExperimentSpec } from '../lab/spec/experiment';
import type { WorkerMessage, WorkerRequest } from './protocol';

// NOTE: the worker builds its Labs for the browser's backends; here they run on onnxruntime-node.
vi.mock('../lab/run/lab', async (importOriginal) => {
  const m = await importOriginal<typeof import('../lab/run/lab')>();
  class NodeLab extends m.Lab {
    constructor(env: ConstructorParameters<typeof m.Lab>[0]) {
      super({ ...env, backend: 'node-cpu' });
    }
  }
  return { ...m, Lab: NodeLab };
});
vi.mock('../engine/session', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../engine/session')>()),
  configureOrt: () => undefined,
}));

const FIX = path.resolve(__dirname, '../../fixtures');
const posted: WorkerMessage[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);
let deliver: (req: WorkerRequest) => void;
let nextId = 1;

/** A request without its id (send numbers them). */
type Unsent = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never;

/** Sends one request and waits for its answer (`…-done`, error or cancelled; not progress events). */
async function send(req: Unsent): Promise<WorkerMessage> {
  const id = nextId++;
  const from = posted.length;
  deliver({ ...req, id } as WorkerRequest);
  const final = (t: string) => t.endsWith('-done') || t === 'error' || t === 'cancelled';
  for (let waited = 0; waited < 120_000; waited += 10) {
    const done = posted.slice(from).find((m) => m.id === id && final(m.type));
    if (done) return done;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no answer to ${req.type}`);
}

function folder(fixture: string, edit: Record<string, (json: Record<string, unknown>) => unknown> = {}) {
  const dir = path.join(FIX, fixture);
  return readdirSync(dir).map((f) => {
    const bytes = readFileSync(path.join(dir, f));
    const body = edit[f] ? JSON.stringify(edit[f](JSON.parse(bytes.toString('utf8')))) : bytes;
    return { path: f, file: new Blob([body]) };
  });
}

function pair(base: string, finetuned: string): ExperimentSpec {
  const s = defaultSpec();
  s.models = {
    base: { source: { kind: 'local', path: base }, role: 'base' },
    finetuned: { source: { kind: 'local', path: finetuned }, role: 'finetuned' },
  };
  s.conversation = { system: null, user: 'hey I feel bored', templateArgs: { date_string: '26 Jul 2024' } };
  s.conditions = [{ id: 'ft', label: 'Finetuned', model: 'finetuned' }];
  s.generation = { maxNewTokens: 2, temperature: 0, seed: 0 };
  return s;
}

const modelsOf = async () => {
  const info = await send({ type: 'info' });
  expect(info.type).toBe('info-done');
  return (info as Extract<WorkerMessage, { type: 'info-done' }>).info.models.map((m) => m.source).sort();
};

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  const scope = {
    location: { origin: 'http://127.0.0.1:5173' },
    navigator: {},
    postMessage: (m: WorkerMessage) => posted.push(m),
    onmessage: null as null | ((e: { data: WorkerRequest }) => void),
  };
  vi.stubGlobal('self', scope);
  await import('./engine.worker');
  deliver = (req) => scope.onmessage?.({ data: req });
  for (const [name, files] of [
    ['good-base', folder('tiny-llama')],
    ['good-ft', folder('tiny-llama-ft')],
    [
      'bad-config',
      folder('tiny-llama-ft', { 'config.json': (c) => ({ ...c, num_hidden_layers: 10_000_000 }) }),
    ],
    [
      'bad-template',
      folder('tiny-llama-ft', {
        'tokenizer_config.json': (c) => ({ ...c, chat_template: '{% for i in range(10**9) %}x{% endfor %}' }),
      }),
    ],
  ] as const)
    expect((await send({ type: 'local-folder', name, files: [...files] })).type).toBe('local-folder-done');
}, 120_000);

afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  vi.unstubAllGlobals();
});

describe('engine worker: a failing model pair leaves the previous one loaded and usable', () => {
  const good = pair('good-base', 'good-ft');
  const goodModels = [
    JSON.stringify(good.models.base.source),
    JSON.stringify(good.models.finetuned.source),
  ].sort();

  it('loads a good pair', async () => {
    expect((await send({ type: 'prepare', spec: good })).type).toBe('prepare-done');
    expect(await modelsOf()).toEqual(goodModels);
  }, 120_000);

  it('a config.json with 10 million layers is an error response naming the field; the good pair stays', async () => {
    const answer = await send({ type: 'prepare', spec: pair('good-base', 'bad-config') });
    expect(answer.type).toBe('error');
    expect((answer as Extract<WorkerMessage, { type: 'error' }>).message).toMatch(
      /bad-config\/config\.json: num_hidden_layers must be at most 1024/,
    );
    expect(await modelsOf()).toEqual(goodModels);
  }, 120_000);

  it('a chat template that loops for ever is an error response naming it; the good pair stays', async () => {
    const answer = await send({ type: 'prepare', spec: pair('good-base', 'bad-template') });
    expect(answer.type).toBe('error');
    expect((answer as Extract<WorkerMessage, { type: 'error' }>).message).toMatch(
      /chat template of bad-template\/tokenizer_config\.json: range\(0, 1000000000, 1\)/,
    );
    expect(await modelsOf()).toEqual(goodModels);
  }, 120_000);

  it('the good pair still runs afterwards, and nothing was left unhandled', async () => {
    const done = await send({ type: 'run', spec: good });
    expect(done.type).toBe('run-done');
    expect(unhandled).toEqual([]);
  }, 120_000);
});
