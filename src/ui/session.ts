// The UI's one connection to the engine: owns the EngineClient, turns spec changes into worker requests
// (prepare → run → drift, debounced; sweeps and layer sweeps on demand) and streamed events into store
// updates, and cancels what a newer request supersedes. Model requests go through an EngineQueue, one
// at a time. Must never run a model on the UI thread or import anything of the engine; everything goes
// through src/worker/client.ts.
import { specHash, type PatchComponent } from '../lab/spec/experiment';
import { isAbort } from '../common/abort';
import { errorMessage } from '../common/errors';
import { EngineClient, WorkerError } from '../worker/client';
import type { LoadProgress, LocalFile, TokenNeighbour, WorkerEvent } from '../worker/protocol';
import { keepEndpoint, keepToken, rememberedEndpoint, rememberedToken } from './hub-access';
import { EngineQueue, type Job } from './engine-queue';
import {
  applyCondition,
  applyToken,
  beginRun,
  conditionKey,
  endRun,
  promptKey,
  staleConditions,
} from './results-state';
import type { LabStoreApi, ModelLoad } from './store';
import { wasmHeapFromQuery } from './wasm-heap';

const AUTO_RUN_DELAY_MS = 450;
const INFO_TIMEOUT_MS = 8000;
const QUEUED_TIMEOUT_MS = 120_000;

type Slot = 'prepare' | 'run' | 'sweep' | 'layer' | 'drift' | 'lens';

/** Rejects after `ms` when the worker does not answer. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: the engine did not answer`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Folds a progress event into a model's load: whether anything was downloaded, the largest total. */
export function mergeLoad(prev: ModelLoad | undefined, p: LoadProgress): ModelLoad {
  // NOTE: a refusal to cache stays on the row until the load ends (later events lack it).
  const notCached = p.notCached ?? prev?.notCached;
  const kept = notCached === undefined ? {} : { notCached };
  if (p.stage !== 'download') return { ...p, fetched: prev?.fetched, bytes: prev?.bytes, ...kept };
  return {
    ...p,
    fetched: (prev?.fetched ?? false) || !p.cached,
    bytes: Math.max(prev?.bytes ?? 0, p.total),
    ...kept,
  };
}

export class LabSession {
  private clientOrNull: EngineClient | null = null;
  private queueOrNull: EngineQueue | null = null;

  /** the one-request-at-a-time queue (null before start / after dispose), for panels that share it */
  get engineQueue(): EngineQueue | null {
    return this.queueOrNull;
  }
  private makeClient: () => EngineClient;
  private store: LabStoreApi;
  private unsubscribe: (() => void) | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** the job in each slot, for cancel */
  private active: Partial<Record<Slot, Job<unknown>>> = {};
  /** bumps on every refresh: late events of an older refresh are ignored */
  private generation = 0;
  private disposed = false;
  /** condition keys of the last run started, to tell whether the spec changed in a way that matters */
  private lastRunKeys = '';
  /** promptKey of the spec whose load failed last: a spec that differs from it loads again */
  private failedPromptKey: string | null = null;

  /** Creates no worker until start(): React may construct and discard a session (StrictMode). */
  constructor(store: LabStoreApi, makeClient: () => EngineClient = () => new EngineClient()) {
    this.store = store;
    this.makeClient = makeClient;
  }

  private get client(): EngineClient {
    if (!this.clientOrNull) throw new Error('the lab session is not started');
    return this.clientOrNull;
  }

  private get queue(): EngineQueue {
    if (!this.queueOrNull) throw new Error('the lab session is not started');
    return this.queueOrNull;
  }

  /** Starts the worker, probes the backend, runs the current spec once, then follows spec edits. */
  start(): void {
    if (this.clientOrNull) return;
    this.disposed = false;
    this.clientOrNull = this.makeClient();
    this.queueOrNull = new EngineQueue(this.clientOrNull);
    this.active = {};
    const heap = typeof location === 'undefined' ? null : wasmHeapFromQuery(location.search);
    this.client
      .request({ type: 'probe', ...(heap ? { wasmHeapBytes: heap.bytes } : {}) })
      .then((r) => {
        if (!this.disposed) this.store.setState({ backend: r.backend });
      })
      .catch((e: unknown) => {
        if (!this.disposed) this.store.setState({ backendError: errorMessage(e) });
      });
    this.unsubscribe = this.store.subscribe((s, prev) => {
      if (s.spec !== prev.spec) this.onSpecChange();
    });
    // NOTE: the worker starts with no token and the public Hub; a token this tab was asked to remember
    // goes over before the first load (requests are answered in order).
    const token = rememberedToken();
    const endpoint = rememberedEndpoint();
    if (endpoint) void this.setHubEndpoint(endpoint).catch(() => keepEndpoint(null));
    if (token) void this.setHubToken(token, true);
    void this.refresh();
  }

  /** Stops following the spec and terminates the worker; start() may be called again. */
  dispose(): void {
    this.disposed = true;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.clientOrNull?.dispose();
    this.clientOrNull = null;
    this.queueOrNull = null;
  }

  private runKeys(): string {
    const spec = this.store.getState().spec;
    return spec.conditions.map((c) => `${c.id}\u0000${conditionKey(spec, c.id)}`).join('\u0001');
  }

  private onSpecChange(): void {
    const s = this.store.getState();
    // NOTE: after a failed load promptKey is still the models that loaded before; going back to them
    // (undo, the demo again) must load them again and clear the error, not find nothing changed.
    const failedElsewhere = s.promptStatus === 'error' && this.failedPromptKey !== promptKey(s.spec);
    const promptStale = s.promptKey !== promptKey(s.spec) || failedElsewhere;
    const runStale = this.runKeys() !== this.lastRunKeys;
    if (!promptStale && !runStale) return; // e.g. a rename
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.store.getState().ui.autoRun) void this.refresh();
      else if (promptStale) void this.prepare(++this.generation);
    }, AUTO_RUN_DELAY_MS);
  }

  private cancel(slot: Slot): void {
    this.active[slot]?.cancel();
    delete this.active[slot];
  }

  private submit<T>(slot: Slot, job: Job<T>): Job<T> {
    this.active[slot] = job as Job<unknown>;
    return job;
  }

  private release(slot: Slot, job: Job<unknown>): void {
    if (this.active[slot] === job) delete this.active[slot];
  }

  /**
   * Re-renders the prompt if needed and runs the conditions whose answers are not final for the current
   * spec (every one with `all`), cancelling a run in flight; then prefix drift when the spec asks for it
   * and the prompt changed. Resolves when this refresh is over (or superseded).
   */
  async refresh(opts: { all?: boolean } = {}): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const gen = ++this.generation;
    this.cancel('prepare');
    this.cancel('run');
    this.cancel('drift');
    const s = this.store.getState();
    if (s.promptKey !== promptKey(s.spec) || s.promptStatus !== 'done') {
      const ok = await this.prepare(gen);
      if (!ok || gen !== this.generation) return;
    }
    // NOTE: metrics are computed from the models' own distributions, not from other conditions, so a
    // spec holding only the stale conditions gives them the same answers and metrics as a full run.
    const now = this.store.getState();
    const ids = opts.all ? now.spec.conditions.map((c) => c.id) : staleConditions(now.conditions, now.spec);
    if (ids.length > 0) await this.run(gen, ids);
    if (gen !== this.generation) return;
    void this.fetchInfo();
    const after = this.store.getState();
    if (
      after.spec.metrics.includes('prefix_drift') &&
      (opts.all || after.drift.key !== promptKey(after.spec))
    )
      await this.drift();
  }

  private onEvent(gen: number, e: WorkerEvent): void {
    if (gen !== this.generation || this.disposed) return;
    const s = this.store.getState();
    switch (e.type) {
      case 'progress':
        this.store.setState({
          loading: e.progress,
          loads: { ...s.loads, [e.progress.model]: mergeLoad(s.loads[e.progress.model], e.progress) },
        });
        break;
      case 'backend':
        this.store.setState({
          backendUsed: { used: e.backend.used, fallbackReason: e.backend.fallbackReason },
        });
        break;
      case 'prompt':
        this.store.setState({
          prompt: e.prompt,
          promptKey: promptKey(s.spec),
          promptStatus: 'done',
          promptError: null,
        });
        break;
      case 'token':
        this.store.setState({ conditions: applyToken(s.conditions, s.spec, e, s.prompt) });
        break;
      case 'condition':
        this.store.setState({ conditions: applyCondition(s.conditions, s.spec, e.result) });
        break;
      case 'sweep':
        break; // sweeps have their own handler
    }
  }

  private async prepare(gen: number): Promise<boolean> {
    const spec = this.store.getState().spec;
    const key = promptKey(spec);
    this.store.setState({ promptStatus: 'running', promptError: null, promptProblem: null, loads: {} });
    const job = this.submit(
      'prepare',
      this.queue.submit({ type: 'prepare', spec }, (e) => this.onEvent(gen, e)),
    );
    try {
      const r = await job.done;
      if (gen !== this.generation) return false;
      this.store.setState({
        prompt: r.prompt,
        promptKey: key,
        promptStatus: 'done',
        promptError: null,
        loading: null,
      });
      void this.fetchInfo();
      return true;
    } catch (e) {
      if (gen !== this.generation) return false;
      if (isAbort(e)) {
        this.store.setState({ promptStatus: 'cancelled', loading: null });
        return false;
      }
      this.failedPromptKey = key;
      this.store.setState({
        promptStatus: 'error',
        promptError: errorMessage(e),
        promptProblem: e instanceof WorkerError ? e.problem : null,
        loading: null,
      });
      return false;
    } finally {
      this.release('prepare', job);
    }
  }

  private async run(gen: number, ids: string[]): Promise<void> {
    const st = this.store.getState();
    const spec = st.spec;
    const only = new Set(ids);
    const sub = { ...spec, conditions: spec.conditions.filter((c) => only.has(c.id)) };
    this.lastRunKeys = this.runKeys();
    this.store.setState({
      conditions: beginRun(st.conditions, spec, ids),
      run: { status: 'running', error: null },
    });
    const job = this.submit(
      'run',
      this.queue.submit({ type: 'run', spec: sub }, (e) => this.onEvent(gen, e)),
    );
    try {
      const r = await job.done;
      if (gen !== this.generation) return;
      let conditions = this.store.getState().conditions;
      for (const c of r.result.conditions) conditions = applyCondition(conditions, spec, c);
      this.store.setState({
        conditions: endRun(conditions, 'done'),
        run: { status: 'done', error: null },
        prompt: r.result.prompt ?? this.store.getState().prompt,
        loading: null,
      });
    } catch (e) {
      if (gen !== this.generation) return;
      const cancelled = isAbort(e);
      this.store.setState({
        conditions: endRun(this.store.getState().conditions, cancelled ? 'cancelled' : 'error'),
        run: { status: cancelled ? 'cancelled' : 'error', error: cancelled ? null : errorMessage(e) },
        loading: null,
      });
    } finally {
      this.release('run', job);
    }
  }

  /** Stops the run in flight (answers so far stay). */
  cancelRun(): void {
    this.generation++;
    this.cancel('prepare');
    this.cancel('run');
    const s = this.store.getState();
    if (s.run.status === 'running')
      this.store.setState({
        conditions: endRun(s.conditions, 'cancelled'),
        run: { status: 'cancelled', error: null },
      });
    if (s.promptStatus === 'running') this.store.setState({ promptStatus: 'cancelled', loading: null });
  }

  /**
   * The layer × position patching grid for a component. The per-layer patch (with the full-prefix patch,
   * the map's reference) is queued first: one short request, so the map's legend and "which layer" line
   * have it as soon as the grid does.
   */
  async sweep(component: PatchComponent, positions?: number[]): Promise<void> {
    this.cancel('sweep');
    const layers = positions ? undefined : this.layerSweep(component);
    const s0 = this.store.getState();
    const spec = s0.spec;
    const key = promptKey(spec);
    this.store.setState({
      sweep: { ...s0.sweep, component, status: 'running', done: 0, total: 0, error: null },
    });
    const job = this.submit(
      'sweep',
      this.queue.submit({ type: 'sweep', spec, component, positions }, (e) => {
        if (e.type !== 'sweep' || this.active.sweep !== (job as Job<unknown>)) return;
        const s = this.store.getState();
        this.store.setState({
          sweep: {
            ...s.sweep,
            done: e.done,
            total: e.total,
            results: { ...s.sweep.results, [component]: e.result },
            key,
          },
        });
      }),
    );
    try {
      const r = await job.done;
      if (this.active.sweep !== job) return;
      const s = this.store.getState();
      this.store.setState({
        sweep: {
          ...s.sweep,
          status: 'done',
          done: s.sweep.total || s.sweep.done,
          results: { ...s.sweep.results, [component]: r.result },
          key,
        },
      });
    } catch (e) {
      if (this.active.sweep !== job) return;
      const s = this.store.getState();
      const cancelled = isAbort(e);
      this.store.setState({
        sweep: {
          ...s.sweep,
          status: cancelled ? 'cancelled' : 'error',
          error: cancelled ? null : errorMessage(e),
        },
      });
    } finally {
      this.release('sweep', job);
    }
    await layers;
  }

  cancelSweep(): void {
    const job = this.active.sweep;
    if (!job) return;
    if (this.store.getState().layerSweep.status === 'running') this.cancelLayerSweep();
    delete this.active.sweep;
    job.cancel();
    const s = this.store.getState();
    this.store.setState({ sweep: { ...s.sweep, status: 'cancelled' } });
  }

  /** Restoration by layer: one layer at a time, all prefix positions together. */
  async layerSweep(component: PatchComponent): Promise<void> {
    const spec = this.store.getState().spec;
    const key = promptKey(spec);
    const have = this.store.getState().layerSweep;
    // NOTE: the sweep already ran it for these models and prompt (a lesson then asks again): deterministic
    if (have.status === 'done' && have.key === key && have.result?.component === component) return;
    this.cancel('layer');
    this.store.setState({
      layerSweep: { ...this.store.getState().layerSweep, status: 'running', error: null },
    });
    const job = this.submit('layer', this.queue.submit({ type: 'layer-sweep', spec, component }));
    try {
      const r = await job.done;
      if (this.active.layer !== job) return;
      this.store.setState({ layerSweep: { status: 'done', result: r.result, error: null, key } });
    } catch (e) {
      if (this.active.layer !== job) return;
      const cancelled = isAbort(e);
      this.store.setState({
        layerSweep: {
          ...this.store.getState().layerSweep,
          status: cancelled ? 'cancelled' : 'error',
          error: cancelled ? null : errorMessage(e),
        },
      });
    } finally {
      this.release('layer', job);
    }
  }

  cancelLayerSweep(): void {
    const job = this.active.layer;
    if (!job) return;
    delete this.active.layer;
    job.cancel();
    this.store.setState({ layerSweep: { ...this.store.getState().layerSweep, status: 'cancelled' } });
  }

  /** Prefix drift per layer (L_K, L_V) of finetuned vs base. */
  async drift(): Promise<void> {
    this.cancel('drift');
    const spec = this.store.getState().spec;
    const key = promptKey(spec);
    this.store.setState({ drift: { ...this.store.getState().drift, status: 'running', error: null } });
    const job = this.submit('drift', this.queue.submit({ type: 'drift', spec }));
    try {
      const r = await job.done;
      if (this.active.drift !== job) return;
      this.store.setState({ drift: { status: 'done', result: r.result, error: null, key } });
    } catch (e) {
      if (this.active.drift !== job) return;
      const cancelled = isAbort(e);
      this.store.setState({
        drift: {
          ...this.store.getState().drift,
          status: cancelled ? 'cancelled' : 'error',
          error: cancelled ? null : errorMessage(e),
        },
      });
    } finally {
      this.release('drift', job);
    }
  }

  /** The logit lens of every condition (spec.lens settings); `key` is the whole spec's hash. */
  async lens(): Promise<void> {
    this.cancel('lens');
    const spec = this.store.getState().spec;
    const key = specHash(spec);
    this.store.setState({ lens: { ...this.store.getState().lens, status: 'running', error: null } });
    const job = this.submit('lens', this.queue.submit({ type: 'lens', spec }));
    try {
      const r = await job.done;
      if (this.active.lens !== job) return;
      this.store.setState({ lens: { status: 'done', result: r.result, error: null, key } });
    } catch (e) {
      if (this.active.lens !== job) return;
      const cancelled = isAbort(e);
      this.store.setState({
        lens: {
          ...this.store.getState().lens,
          status: cancelled ? 'cancelled' : 'error',
          error: cancelled ? null : errorMessage(e),
        },
      });
    } finally {
      this.release('lens', job);
    }
  }

  cancelLens(): void {
    const job = this.active.lens;
    if (!job) return;
    delete this.active.lens;
    job.cancel();
    this.store.setState({ lens: { ...this.store.getState().lens, status: 'cancelled' } });
  }

  // --- Hub access and local folders: bookkeeping requests, not model work, so not queued ---

  /** Hands the token to the worker (null forgets it); `remember` keeps it in this tab's sessionStorage. */
  async setHubToken(token: string | null, remember: boolean): Promise<void> {
    const t = token?.trim() || null;
    await this.client.request({ type: 'hub-token', token: t });
    keepToken(t, remember && t !== null);
    this.store.setState({
      hub: { ...this.store.getState().hub, tokenSet: t !== null, remembered: remember && !!t },
    });
  }

  /** The Hub endpoint for hub ids (null: the public Hub); the token is sent to this host only. */
  async setHubEndpoint(endpoint: string | null): Promise<string> {
    const r = await this.client.request({ type: 'hub-endpoint', endpoint });
    keepEndpoint(endpoint);
    this.store.setState({ hub: { ...this.store.getState().hub, endpoint } });
    return r.endpoint;
  }

  /** Empties the download cache (all, or one repo); resolves to the bytes freed. */
  async clearCache(repo?: string): Promise<number> {
    const r = await this.client.request({ type: 'clear-cache', ...(repo ? { repo } : {}) });
    return r.removed;
  }

  /** Lends the worker a picked or dropped folder under `name` (the spec's local path). */
  async openLocalFolder(name: string, files: LocalFile[]): Promise<{ files: number; bytes: number }> {
    const r = await this.client.request({ type: 'local-folder', name, files });
    return { files: r.files, bytes: r.bytes };
  }

  /** Accepts loading `adapter` on `base` (an adapter naming a mirror or another base), then retries. */
  async confirmBase(adapter: string, base: string): Promise<void> {
    await this.client.request({ type: 'confirm-base', adapter, base });
    await this.retryLoad();
  }

  /** Loads the spec's models again (after a token, a confirmation or a folder was given). */
  async retryLoad(): Promise<void> {
    await this.refresh();
  }

  /** Loaded models and memory; quietly absent when the worker does not answer 'info'. */
  async fetchInfo(): Promise<void> {
    try {
      // NOTE: 'info' reads bookkeeping only, so it does not wait in the model queue.
      const r = await withTimeout(this.client.request({ type: 'info' }), INFO_TIMEOUT_MS, 'info');
      if (!this.disposed) this.store.setState({ info: r.info });
    } catch {
      // optional: the models panel then shows what the spec says instead
    }
  }

  /** Nearest embedding neighbours of a token (for the token editor's replace list). */
  async neighbours(tokenId: number, n = 8): Promise<TokenNeighbour[]> {
    const spec = this.store.getState().spec;
    const job = this.queue.submit({ type: 'neighbours', spec, tokenId, n });
    const r = await withTimeout(job.done, QUEUED_TIMEOUT_MS, 'nearest neighbours');
    return r.neighbours;
  }

  /** Token ids of typed text (for previewing a typed replacement). */
  async tokenize(text: string): Promise<{ id: number; text: string }[]> {
    const spec = this.store.getState().spec;
    const job = this.queue.submit({ type: 'tokenize', spec, text });
    const r = await withTimeout(job.done, QUEUED_TIMEOUT_MS, 'tokenize');
    return r.tokens;
  }
}
