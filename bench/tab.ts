// `npm run bench -- --only tab`: the browser tab's memory and time for the Qwen2.5-0.5B-shaped LoRA pair
// loaded by Hub ids (issue 14's target: tab peak ≤ 1.3× the graph). The random real-shape models
// (.cache/bench-qwen0.5b + -lora, `npx tsx scripts/fixtures/real-shapes.ts qwen0.5b qwen0.5b-lora`,
// written here when missing) are served by the Hub stand-in (scripts/hub-test-server.ts) as
// `Qwen/Qwen2.5-0.5B-Instruct` and an adapter repo; a `vite build` of the app is served by
// `vite preview`; Debian's Chromium (never a downloaded one) opens it in a persistent profile of its
// own with WebGPU disabled (the WASM backend, as e2e's wasm project), types the ids into the Models
// panel and waits for every answer. Every 250 ms it reads VmHWM / VmRSS from /proc/<pid>/status of each
// renderer (a descendant of the browser process with `--type=renderer`). Two visits: cold (empty
// profile: everything downloaded into Cache Storage) and warm (the same profile reopened: a second visit).
// Prints numbers, never asserts; progress on stderr. Deletes its profile folder at the end.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from '@playwright/test';
import { startHubTestServer, type HubTestServer, type RepoDef } from '../scripts/hub-test-server';
import { CHROMIUM_BASE_ARGS, CHROMIUM_PATH } from '../e2e/chromium';
import { loadSample, log, type LoadSample } from './lib';

/** A pair the tab loads: folders (real-shapes.ts names under .cache/bench-…) served as Hub repos. */
export interface TabPair {
  label: string;
  base: { name: string; repo: string };
  /** a LoRA adapter on the base (its config names the base's repo, so it loads without a confirmation) */
  adapter?: { name: string; repo: string };
  /** a full finetune (a second model) */
  finetuned?: { name: string; repo: string };
}

export const TAB_PAIRS: Record<string, TabPair> = {
  'qwen0.5b-lora': {
    label: 'Qwen2.5-0.5B-shaped LoRA pair',
    base: { name: 'qwen0.5b', repo: 'Qwen/Qwen2.5-0.5B-Instruct' },
    adapter: { name: 'qwen0.5b-lora', repo: 'piggyback-bench/qwen0.5b-rslora-r32' },
  },
  'qwen0.5b-ft': {
    label: 'Qwen2.5-0.5B-shaped base + full finetune',
    base: { name: 'qwen0.5b', repo: 'Qwen/Qwen2.5-0.5B-Instruct' },
    finetuned: { name: 'qwen0.5b-ft', repo: 'piggyback-bench/qwen0.5b-full-finetune' },
  },
  'llama1b-lora': {
    label: 'Llama-3.2-1B-shaped LoRA pair',
    base: { name: 'llama1b', repo: 'meta-llama/Llama-3.2-1B-Instruct' },
    adapter: { name: 'llama1b-lora', repo: 'piggyback-bench/llama1b-rslora-r32' },
  },
};

const dirOf = (name: string): string => `.cache/bench-${name}`;
const CHROMIUM = CHROMIUM_PATH;
const ARGS = [
  '--enable-unsafe-webgpu',
  ...CHROMIUM_BASE_ARGS,
  // NOTE: as e2e's wasm project; but beside --enable-unsafe-webgpu Chromium still offers SwiftShader's
  // adapter (measured: the pair loaded on WebGPU, weights in the GPU process), so the Models panel's
  // Device is set to WASM too.
  '--disable-features=WebGPU',
];
const SAMPLE_MS = 250;
/** how long after the answers RSS is read as "settled" */
const SETTLE_MS = 10_000;
const VISIT_TIMEOUT_MS = 15 * 60_000;

export interface TabVisit {
  visit: 'cold' | 'warm';
  /** TAB_PAIRS key and the Weights choice */
  pair: string;
  dtype: string;
  /** "Load these models" clicked → the models loaded and the prompt rendered (`last-load` row), s */
  loadS: number;
  /** the click → every answer final, s */
  answersS: number;
  /** first time each load step showed per model row, s after the click (`load-progress` data-stage) */
  stages: Record<string, Record<string, number>>;
  /** the renderer's RSS (bytes) when each of those steps first showed: where the memory comes from */
  stageRss: Record<string, Record<string, number>>;
  /** the backend the models ran on (`backend` data-kind) */
  backend: string | null;
  /** the weight bytes the Models panel reports (`memory-weights` data-bytes) */
  graphBytes: number | null;
  /** the largest VmHWM of any renderer (the app's tab and its worker live in one) */
  peakRendererBytes: number;
  /** the same when the models were loaded (before any answer ran) */
  peakLoadedRendererBytes: number;
  /** the largest VmRSS seen in a 250 ms sample, renderer and whole browser (every process) */
  peakSampledRendererBytes: number;
  peakSampledBrowserBytes: number;
  /** the renderer's VmRSS 10 s after the answers */
  settledRendererBytes: number;
  samples: number;
  /** GETs of the weights files (base, adapter or finetuned model) the server answered in this visit */
  weightGets: { base: number; adapter: number };
  /** the Models panel's "not cached: …" line, if the browser refused to store a download */
  notCached: string | null;
  load: [LoadSample, LoadSample];
}

/** A file's bytes; in pieces, since readFileSync stops at 2 GiB (the 1B model's weights are 2.47 GB). */
function readWhole(file: string): Uint8Array {
  const size = statSync(file).size;
  const out = new Uint8Array(size);
  const fd = openSync(file, 'r');
  try {
    for (let done = 0; done < size;) {
      const n = readSync(fd, out, done, Math.min(1 << 30, size - done), done);
      if (n <= 0) throw new Error(`tab: ${file} ended at ${done} of ${size} bytes`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

function readFolder(dir: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (name !== 'real-shape.json' && statSync(full).isFile()) out.set(name, readWhole(full));
  }
  return out;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** `key: value` lines of /proc/<pid>/status → bytes of VmHWM and VmRSS (null when gone). */
function memOf(pid: number): { hwm: number; rss: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0) * 1024;
    return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
  } catch {
    return null;
  }
}

/** Every process: pid → [parent pid, cmdline]. */
function processTable(): Map<number, { ppid: number; cmd: string }> {
  const out = new Map<number, { ppid: number; cmd: string }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      out.set(Number(d), { ppid, cmd });
    } catch {
      // NOTE: gone between readdir and read
    }
  }
  return out;
}

/** The browser process of this profile and its descendants; renderers are those with --type=renderer. */
function browserTree(profile: string): { all: number[]; renderers: number[] } {
  const t = processTable();
  const root = [...t].find(
    ([, p]) => p.cmd.includes(`--user-data-dir=${profile}`) && !p.cmd.includes('--type='),
  );
  if (!root) return { all: [], renderers: [] };
  const all = [root[0]];
  for (let i = 0; i < all.length; i++) for (const [pid, p] of t) if (p.ppid === all[i]) all.push(pid);
  return { all, renderers: all.filter((pid) => t.get(pid)?.cmd.includes('--type=renderer')) };
}

interface Sampler {
  stop(): { peakHwm: number; peakRss: number; peakTree: number; samples: number };
  /** the renderers' largest VmHWM so far */
  hwm(): number;
  rendererRss(): number;
}

function startSampler(profile: string): Sampler {
  let peakHwm = 0;
  let peakRss = 0;
  let peakTree = 0;
  let samples = 0;
  let tree = browserTree(profile);
  let ticks = 0;
  const sample = () => {
    // NOTE: new renderers (the worker's process is the page's; a new page gets one) show up within 2 s
    if (ticks++ % 8 === 0) tree = browserTree(profile);
    let total = 0;
    for (const pid of tree.all) {
      const m = memOf(pid);
      if (!m) continue;
      total += m.rss;
      if (tree.renderers.includes(pid)) {
        peakHwm = Math.max(peakHwm, m.hwm);
        peakRss = Math.max(peakRss, m.rss);
      }
    }
    peakTree = Math.max(peakTree, total);
    samples++;
  };
  const timer = setInterval(sample, SAMPLE_MS);
  sample();
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { peakHwm, peakRss, peakTree, samples };
    },
    hwm() {
      sample();
      return peakHwm;
    },
    rendererRss() {
      tree = browserTree(profile);
      return Math.max(0, ...tree.renderers.map((pid) => memOf(pid)?.rss ?? 0));
    },
  };
}

/** Every answer on the page final (and at least one). */
const allAnswersDone = (page: Page) =>
  page.evaluate(() => {
    const a = [...document.querySelectorAll('[data-testid="answer"]')];
    return a.length > 0 && a.every((e) => e.getAttribute('data-done') === 'true' && e.textContent !== '');
  });

async function waitFor(what: string, f: () => Promise<boolean>, onTick?: () => Promise<void>): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    await onTick?.();
    if (await f()) return;
    if (Date.now() - t0 > VISIT_TIMEOUT_MS) throw new Error(`tab: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
  }
}

async function visit(
  kind: 'cold' | 'warm',
  profile: string,
  appUrl: string,
  hub: HubTestServer,
  pairName: string,
  dtype: string,
): Promise<TabVisit> {
  const pair = TAB_PAIRS[pairName];
  const BASE_REPO = pair.base.repo;
  const second = pair.adapter ?? pair.finetuned!;
  const before = loadSample();
  const context: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 800 },
  });
  const sampler = startSampler(profile);
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(appUrl);
    await page.getByLabel('Device').selectOption('wasm');
    await waitFor('the demo answers', () => allAnswersDone(page));
    log(`tab ${kind}: the demo answered on WASM`);
    if (dtype !== 'fp32') {
      await page.getByLabel('Weights').selectOption(dtype);
      await waitFor(`the demo in ${dtype}`, () => allAnswersDone(page));
    }
    await page.getByLabel('model pair source').selectOption('hub');
    await page.getByLabel('Hub endpoint').fill(hub.url);
    await page.getByTestId('hub-access').getByRole('button', { name: 'Set', exact: true }).click();
    await page.getByLabel('base hub id').fill(BASE_REPO);
    await page.getByLabel('adapter hub id').fill(pair.adapter?.repo ?? '');
    await page.getByLabel('finetuned hub id').fill(pair.finetuned?.repo ?? '');
    hub.reset();
    log(`tab ${kind}: loading ${BASE_REPO} + ${second.repo} (${dtype})`);
    const t0 = performance.now();
    await page.getByRole('button', { name: 'Load these models' }).click();
    const stages: Record<string, Record<string, number>> = {};
    const stageRss: Record<string, Record<string, number>> = {};
    const at = () => (performance.now() - t0) / 1000;
    const trackStages = async () => {
      const rows = await page
        .locator('[data-testid="load-progress"] li[data-stage]')
        .evaluateAll((ls) =>
          ls.map((l) => [l.getAttribute('data-model') ?? '', l.getAttribute('data-stage') ?? '']),
        );
      for (const [model, stage] of rows) {
        stages[model] ??= {};
        if (stages[model][stage] === undefined) {
          stages[model][stage] = Math.round(at() * 10) / 10;
          (stageRss[model] ??= {})[stage] = sampler.rendererRss();
          log(
            `tab ${kind}: ${at().toFixed(1)} s ${model} ${stage} (renderer ${gib(stageRss[model][stage])} GiB)`,
          );
        }
      }
    };
    const lastLoad = page.getByTestId('last-load').locator(`[data-model="${BASE_REPO}"]`);
    await waitFor('the models', async () => (await lastLoad.count()) > 0, trackStages);
    const loadS = at();
    const hwmLoaded = sampler.hwm();
    log(`tab ${kind}: models loaded in ${loadS.toFixed(1)} s`);
    await waitFor('the answers', () => allAnswersDone(page), trackStages);
    const answersS = at();
    log(`tab ${kind}: answers in ${answersS.toFixed(1)} s`);
    const backend = await page.getByTestId('backend').first().getAttribute('data-kind');
    const weights = page.getByTestId('memory-weights');
    const graphBytes = (await weights.count()) ? Number(await weights.getAttribute('data-bytes')) : null;
    const notCached = page.getByTestId('not-cached');
    const notCachedText = (await notCached.count())
      ? ((await notCached.first().textContent()) ?? '').trim()
      : null;
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const settled = sampler.rendererRss();
    const peak = sampler.stop();
    const gets = (repo: string, file: string) =>
      hub.requests.filter(
        (r) => r.method === 'GET' && r.path.startsWith(`/cdn/${repo}/`) && r.path.endsWith(file),
      ).length;
    const v: TabVisit = {
      visit: kind,
      pair: pairName,
      dtype,
      loadS: Math.round(loadS * 10) / 10,
      answersS: Math.round(answersS * 10) / 10,
      stages,
      stageRss,
      backend,
      graphBytes,
      peakRendererBytes: peak.peakHwm,
      peakLoadedRendererBytes: hwmLoaded,
      peakSampledRendererBytes: peak.peakRss,
      peakSampledBrowserBytes: peak.peakTree,
      settledRendererBytes: settled,
      samples: peak.samples,
      weightGets: {
        base: gets(BASE_REPO, 'model.safetensors'),
        adapter: gets(second.repo, pair.adapter ? 'adapter_model.safetensors' : 'model.safetensors'),
      },
      notCached: notCachedText,
      load: [before, loadSample()],
    };
    log(
      `tab ${kind}: peak renderer ${gib(v.peakRendererBytes)} GiB` +
        (graphBytes
          ? ` = ${(v.peakRendererBytes / graphBytes).toFixed(2)}× the graph (${gb(graphBytes)} GB)`
          : '') +
        `, settled ${gib(settled)} GiB`,
    );
    return v;
  } finally {
    sampler.stop();
    await context.close();
  }
}

function ensureModels(pair: TabPair): void {
  const names = [pair.base, pair.adapter ?? pair.finetuned!].map((m) => m.name);
  const missing = names.filter(
    (n) => !existsSync(`${dirOf(n)}/config.json`) && !existsSync(`${dirOf(n)}/adapter_config.json`),
  );
  if (!missing.length) return;
  log(`tab: writing the real-shape models (npx tsx scripts/fixtures/real-shapes.ts ${missing.join(' ')})`);
  const r = spawnSync('npx', ['tsx', 'scripts/fixtures/real-shapes.ts', ...missing], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) throw new Error('tab: real-shapes.ts failed');
}

async function startPreview(port: number): Promise<ChildProcess> {
  const child = spawn(
    'npx',
    ['vite', 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort'],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      detached: true,
    },
  );
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; i < 120; i++) {
    try {
      if ((await fetch(url)).ok) return child;
    } catch {
      // NOTE: not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`tab: vite preview did not answer on ${url}`);
}

/** Both visits (cold, then warm: the same profile reopened); [] when the browser is missing. */
export async function measureTab(
  opts: { build?: boolean; pair?: string; dtype?: string; visits?: ('cold' | 'warm')[] } = {},
): Promise<TabVisit[]> {
  if (!existsSync(CHROMIUM)) {
    log(`tab: no Chromium at ${CHROMIUM}; skipped`);
    return [];
  }
  const pairName = opts.pair ?? 'qwen0.5b-lora';
  const pair = TAB_PAIRS[pairName];
  if (!pair) throw new Error(`tab: no pair "${pairName}" (${Object.keys(TAB_PAIRS).join(', ')})`);
  const dtype = opts.dtype ?? 'fp32';
  ensureModels(pair);
  if (opts.build !== false) {
    log('tab: npx vite build');
    const b = spawnSync('npx', ['vite', 'build'], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (b.status !== 0) throw new Error('tab: vite build failed');
  }
  log(`tab: starting the Hub stand-in with the ${pair.label} (hashing its files)`);
  const repos: Record<string, RepoDef> = {};
  for (const m of [pair.base, pair.adapter ?? pair.finetuned!])
    repos[m.repo] = { files: readFolder(dirOf(m.name)), behaviour: {} };
  const hub = await startHubTestServer({ repos });
  log(`tab: Hub stand-in at ${hub.url}`);
  const port = await freePort();
  const preview = await startPreview(port);
  const profile = mkdtempSync(join(tmpdir(), 'piggyback-tab-'));
  const out: TabVisit[] = [];
  try {
    // NOTE: a warm visit alone still starts from an empty profile (nothing cached yet): it is a cold one
    for (const kind of opts.visits ?? ['cold', 'warm'])
      out.push(await visit(kind, profile, `http://127.0.0.1:${port}/`, hub, pairName, dtype));
  } finally {
    if (preview.pid) process.kill(-preview.pid);
    await hub.close();
    rmSync(profile, { recursive: true, force: true });
  }
  return out;
}

const gb = (b: number): string => (b / 1e9).toFixed(2);
const gib = (b: number): string => (b / 2 ** 30).toFixed(2);

export function tabTable(rows: readonly TabVisit[]): string {
  const head =
    '| visit | backend | load s | answers s | graph GB | peak renderer (VmHWM) GiB: loaded / answered | peak ÷ graph: loaded / answered | peak sampled renderer / whole browser GiB | renderer settled GiB | weight GETs base / second | load |\n' +
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |';
  const body = rows.map(
    (r) =>
      `| ${r.visit} | ${r.backend ?? '?'} | ${r.loadS.toFixed(1)} | ${r.answersS.toFixed(1)} | ${r.graphBytes ? gb(r.graphBytes) : '?'} | ` +
      `${gib(r.peakLoadedRendererBytes)} / ${gib(r.peakRendererBytes)} | ` +
      `${r.graphBytes ? `${(r.peakLoadedRendererBytes / r.graphBytes).toFixed(2)} / ${(r.peakRendererBytes / r.graphBytes).toFixed(2)}` : '?'} | ` +
      `${gib(r.peakSampledRendererBytes)} / ${gib(r.peakSampledBrowserBytes)} | ${gib(r.settledRendererBytes)} | ` +
      `${r.weightGets.base} / ${r.weightGets.adapter} | ${r.load[0].load[0]}–${r.load[1].load[0]} |`,
  );
  const stages = rows.map(
    (r) =>
      `- ${r.visit}: ` +
      Object.entries(r.stages)
        .map(
          ([m, s]) =>
            `${m}: ${Object.entries(s)
              .map(([k, t]) => {
                const rss = r.stageRss?.[m]?.[k];
                return `${k} ${t} s${rss !== undefined ? ` (renderer ${gib(rss)} GiB)` : ''}`;
              })
              .join(', ')}`,
        )
        .join('; ') +
      (r.notCached ? ` — ${r.notCached}` : ''),
  );
  const title = rows.length ? `${TAB_PAIRS[rows[0].pair]?.label ?? rows[0].pair}, ${rows[0].dtype}` : '';
  return [
    `### Browser tab: ${title}, by Hub ids, WASM (Chromium, Hub stand-in on loopback)`,
    '',
    head,
    ...body,
    '',
    'First time each load step showed (s after "Load these models"):',
    ...stages,
  ].join('\n');
}
