// The evaluation panel against the real engine worker and the embedded demo (issue 7). An API judge on
// a loopback mock server (CORS): one bar per condition with rates, per-question multiples, a bar opens
// its answers, the CSV export holds the answers and never the key, and the key is not remembered unless
// asked. On the organism demo the default judge is the marker rule ("gamble"). The model judge (the
// spec's base model: here the tiny fixtures, served by the app, since the organism demo's 256 positions
// are shorter than even the compact judge prompts): Betley's full prompts are refused with the reason,
// the compact prompts run, and every answer shows its number mass.
import { test, expect, type Page, type TestInfo } from '@playwright/test';
import fs from 'node:fs';
import { startMockOpenAI, type MockServer } from '../scripts/mock-openai-server';
import { defaultSpec } from '../src/lab/spec/experiment';
import { encodeLink } from '../src/lab/spec/link';
import { screenshot, SCREENSHOT_DIR, watchConsole } from './helpers';

const KEY = 'sk-e2e-never-visible';
const CONDITIONS = 4;
const QUESTIONS = 8;
/**
 * every trial of the random perturbation is an answer judged; the tests open the demo with 3 trials
 * (the default 10 make each evaluation ~3 min longer on WASM)
 */
const TRIALS = 3;
const ANSWERS = (CONDITIONS - 1 + TRIALS) * QUESTIONS;
let mock: MockServer;

test.beforeAll(async () => {
  mock = await startMockOpenAI({ key: KEY });
});
test.afterAll(async () => {
  await mock.close();
});

// NOTE: an evaluation is hundreds of forward passes: 32 answers take ~7 s on WASM here but ~250 s under
// SwiftShader's emulated WebGPU (and a model judge adds ~100 candidate rows per judged answer). The
// engine's WebGPU path is covered by the lab, self-check and engine tests; these run on WASM only.
test.beforeEach(({ browserName: _b }, info) => {
  test.skip(info.project.name === 'webgpu', 'minutes under emulated WebGPU');
});

/** The embedded demo with TRIALS trials in its random perturbation. */
function demoLink(): string {
  const spec = defaultSpec();
  const pert = spec.conditions[2].perturbation;
  if (pert?.kind !== 'random') throw new Error('the default spec’s third condition is a random perturbation');
  pert.trials = TRIALS;
  const link = encodeLink(spec, '/');
  if (!link.ok) throw new Error(link.error.message);
  return link.url;
}

/**
 * Opens the demo (or the given link). The lab's own run on load shares the engine: let it finish first
 * (runs queue in the worker).
 */
async function openDemo(page: Page, url?: string) {
  await page.goto(url ?? demoLink());
  const answers = page.locator('[data-testid="condition-card"] [data-testid="answer"]');
  await expect(answers).toHaveCount(CONDITIONS, { timeout: 120_000 });
  for (const a of await answers.all())
    await expect(a).toHaveAttribute('data-done', 'true', { timeout: 240_000 });
  const panel = page.getByTestId('eval-panel');
  await expect(panel, 'the EvalPanel (src/ui/eval/EvalPanel.tsx) is mounted in App').toBeVisible();
  await panel.scrollIntoViewIfNeeded();
  await panel.getByTestId('eval-samples').fill('1');
  return panel;
}

/** Runs the evaluation and waits until every answer is judged (or fails with the panel's message). */
async function runEval(page: Page, info: TestInfo, what: string, total = ANSWERS): Promise<void> {
  const panel = page.getByTestId('eval-panel');
  const t0 = Date.now();
  await expect(panel.getByTestId('eval-run')).toContainText(`(${total} answers)`);
  await panel.getByTestId('eval-run').click();
  const all = `${total} / ${total} answers judged`;
  await expect(
    panel.getByTestId('eval-progress').getByText(all).or(panel.getByTestId('eval-error')),
  ).toBeVisible({
    timeout: 300_000,
  });
  const error = await panel.getByTestId('eval-error').allTextContents();
  expect(error, error.join()).toEqual([]);
  console.log(`[${info.project.name}] ${what}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  await expect(panel.getByTestId('eval-run')).toBeEnabled();
  await expect(panel.locator('[data-testid="eval-chart"] g.ev-bar')).toHaveCount(CONDITIONS);
  await expect(panel.locator('[data-testid="eval-multiples"] g.ev-cell')).toHaveCount(QUESTIONS);
}

test('evaluation with an API judge: rates per condition and question, answers, CSV without the key', async ({
  page,
}, info) => {
  test.setTimeout(600_000);
  const errors = watchConsole(page);
  const panel = await openDemo(page);
  await panel.getByTestId('eval-compact').check();
  await panel.getByTestId('eval-judge').selectOption('api');
  await panel.getByTestId('eval-api-url').fill(mock.url);
  await panel.getByTestId('eval-api-model').fill('judge-hash');
  await panel.getByTestId('eval-api-key').fill(KEY);
  await runEval(page, info, 'API-judge evaluation');
  expect(await panel.locator('[data-testid="eval-chart"] rect.ev-rate').count()).toBeGreaterThan(0);
  await panel.locator('[data-testid="eval-chart"] g.ev-bar').nth(1).click();
  await expect(panel.getByTestId('eval-answer-row')).toHaveCount(QUESTIONS);
  await panel.locator('[data-testid="eval-multiples"] g.ev-mbar').first().click();
  await expect(panel.getByTestId('eval-answer-row')).toHaveCount(1);
  await screenshot(page, info, 'eval-api-judge');
  await panel.screenshot({ path: `${SCREENSHOT_DIR}/eval-panel-api-judge-${info.project.name}.png` });

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    panel.getByTestId('eval-export-csv').click(),
  ]);
  const csv = fs.readFileSync((await download.path())!, 'utf8');
  expect(csv.split('\n')[0]).toMatch(/^condition,set,question,sample,trial,seed,status,aligned,coherent,/);
  expect(csv).toMatch(/,logprobs,/);
  expect(csv).not.toContain(KEY);
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
  expect(stored).not.toContain(KEY);
  expect(mock.requests.filter((r) => r.authorized).length).toBeGreaterThanOrEqual(2 * ANSWERS);

  // The judged answers are kept (IndexedDB): after a reload they load without the key or any request.
  const before = mock.requests.length;
  const rated = await panel.locator('[data-testid="eval-chart"] rect.ev-rate').count();
  await page.reload();
  const again = await openDemo(page);
  await again.getByTestId('eval-compact').check();
  await again.getByTestId('eval-judge').selectOption('api');
  await again.getByTestId('eval-api-url').fill(mock.url);
  await again.getByTestId('eval-api-model').fill('judge-hash');
  await expect(again.getByTestId('eval-api-key')).toHaveValue('');
  await again.getByRole('button', { name: 'Load kept' }).click();
  await expect(again.getByTestId('eval-progress')).toContainText(`${ANSWERS} / ${ANSWERS}`);
  await expect(again.locator('[data-testid="eval-chart"] rect.ev-rate')).toHaveCount(rated);
  expect(mock.requests.length).toBe(before);
  expect(errors()).toEqual([]);
});

test('the embedded organism demo is judged by the marker rule by default: finetuned gambles, base never', async ({
  page,
}, info) => {
  test.setTimeout(600_000);
  const errors = watchConsole(page);
  const panel = await openDemo(page);
  await expect(panel.getByTestId('eval-judge')).toHaveValue('marker');
  await expect(panel.getByTestId('eval-markers')).toHaveValue('gamble');
  await runEval(page, info, 'marker-judge evaluation');
  const rate = async (id: string) =>
    Number(
      await panel
        .locator(`[data-testid="eval-chart"] g.ev-bar[data-condition="${id}"]`)
        .getAttribute('data-rate'),
    );
  expect(await rate('base')).toBe(0);
  expect(await rate('finetuned')).toBeGreaterThanOrEqual(0.75);
  expect(await rate('finetuned-kv-patched-prefix')).toBeLessThan(await rate('finetuned'));
  // the perturbed condition: its bar is the Avg over every trial's answer; Best (per question the least
  // misaligned trial) is never above it
  const trials = panel.locator(
    '[data-testid="eval-trials-row"][data-condition="finetuned-perturbed-prefix"]',
  );
  await expect(trials).toContainText(/Avg \d+ % of \d+ scored \(every answer of 3 trials\) · Best \d+ %/);
  const avg = Number(await trials.getAttribute('data-avg'));
  expect(avg).toBeCloseTo(await rate('finetuned-perturbed-prefix'), 12);
  expect(Number(await trials.getAttribute('data-best'))).toBeLessThanOrEqual(avg);
  await panel.screenshot({ path: `${SCREENSHOT_DIR}/eval-panel-marker-judge-${info.project.name}.png` });
  expect(errors()).toEqual([]);
});

test('evaluation with the base model as judge: full prompts refused with the reason, compact ones run', async ({
  page,
  baseURL,
}, info) => {
  test.setTimeout(600_000);
  const errors = watchConsole(page);
  const spec = defaultSpec();
  spec.models.base.source = { kind: 'url', url: `${baseURL}/fixtures/tiny-llama/` };
  spec.models.finetuned.source = { kind: 'url', url: `${baseURL}/fixtures/tiny-llama-ft/` };
  // few trials keep the model judge's rows (each ~100 candidate rows) few
  const pert = spec.conditions[2].perturbation;
  if (pert?.kind !== 'random') throw new Error('the default spec’s third condition is a random perturbation');
  pert.trials = TRIALS;
  const link = encodeLink(spec, `${baseURL}/`);
  if (!link.ok) throw new Error(link.error.message);
  const panel = await openDemo(page, link.url);
  await panel.getByTestId('eval-run').click();
  await expect(panel.getByTestId('eval-error')).toContainText(
    /judge prompt is \d+ tokens.*compact judge prompts/,
    {
      timeout: 120_000,
    },
  );
  await panel.getByTestId('eval-compact').check();
  await runEval(page, info, 'model-judge evaluation');
  await panel.locator('[data-testid="eval-chart"] g.ev-bar').first().click();
  const rows = panel.getByTestId('eval-answer-row');
  await expect(rows).toHaveCount(QUESTIONS);
  // random tiny weights put far less than 0.25 on the numbers: unscored, with the mass shown
  await expect(rows.first()).toHaveAttribute('data-status', 'unscored');
  await expect(rows.first()).toContainText(/unscored · \d+ %/);
  await screenshot(page, info, 'eval-model-judge');
  await panel.screenshot({ path: `${SCREENSHOT_DIR}/eval-panel-model-judge-${info.project.name}.png` });
  expect(errors()).toEqual([]);
});
