// Loading real models through the models panel, against the local Hub stand-in
// (scripts/hub-test-server.ts on a random loopback port, set as the panel's Hub endpoint): a base and
// a LoRA adapter typed as Hub ids, an adapter naming another base confirmed in the panel before any
// weights move, download progress, cancel and resume, a run, a second page from the cache, clearing
// the cache; a gated repo's 401 message, a pending token's 403, then a token that works and never
// reaches the share link, the spec, storage or the cache; a 404; a model too big for the backend
// refused before its download with a q4 button; a base + full finetune that fits a smaller WASM heap
// (`?wasm-heap=`) only in int8, switched to int8 and answering; local folders picked or dropped; the demo organism’s
// finetune choice. Screenshots of each mode go to e2e-screenshots/.
import { test, expect, type Locator, type Page, type TestInfo } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';
import { startHubTestServer, TEST_REPOS, TEST_TOKENS, type HubTestServer } from '../scripts/hub-test-server';
import { decodeLink } from '../src/lab/spec/link';
import { parseConfig } from '../src/engine/config';
import { estimateMemory } from '../src/engine/memory';
import { SCREENSHOT_DIR, watchConsole } from './helpers';

let server: HubTestServer;

test.beforeAll(async () => {
  // NOTE: slow files stream 8 KiB every 80 ms (about 6 s for the fixture): progress can be seen and
  // the load cancelled mid-download.
  server = await startHubTestServer({ slowDelayMs: 80 });
});
test.afterAll(async () => {
  await server.close();
});

// NOTE: the panel flow is UI work over tiny fixtures; the engine itself is covered on both backends by
// engine.spec.ts and hub.spec.ts. On SwiftShader's WebGPU (a CPU emulation) the first test alone took
// 2.6 min against 36 s on WASM here, so the panel tests run on the wasm project only.
test.beforeEach(({ browserName: _b }, info) => {
  test.skip(info.project.name !== 'wasm', 'UI flow: wasm project only');
});

const panel = (page: Page): Locator => page.locator('section.panel').filter({ hasText: /^Models/ });

async function shot(page: Page, info: TestInfo, name: string): Promise<void> {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await panel(page).screenshot({ path: path.join(SCREENSHOT_DIR, `${name}-${info.project.name}.png`) });
}

async function allDone(page: Page): Promise<void> {
  await expect(page.getByTestId('answer').first()).toBeVisible({ timeout: 120_000 });
  for (const answer of await page.getByTestId('answer').all()) {
    await expect(answer).toHaveAttribute('data-done', 'true', { timeout: 120_000 });
    await expect(answer).not.toHaveText('');
  }
}

async function useHubMode(page: Page): Promise<void> {
  await page.getByLabel('model pair source').selectOption('hub');
  await page.getByLabel('Hub endpoint').fill(server.url);
  await page.getByTestId('hub-access').getByRole('button', { name: 'Set', exact: true }).click();
  await expect(
    page.getByTestId('hub-access').getByRole('button', { name: 'Set', exact: true }),
  ).toBeDisabled();
}

async function loadHub(page: Page, base: string, adapter: string, finetuned = ''): Promise<void> {
  await page.getByLabel('base hub id').fill(base);
  await page.getByLabel('adapter hub id').fill(adapter);
  await page.getByLabel('finetuned hub id').fill(finetuned);
  await page.getByRole('button', { name: 'Load these models' }).click();
}

const weightGets = (repo: string) =>
  server.requests.filter(
    (r) => r.method === 'GET' && r.path.startsWith(`/cdn/${repo}/`) && r.path.endsWith('/model.safetensors'),
  );

test('hub ids through the panel: confirm the base, progress, run, cache, clear', async ({ page }, info) => {
  server.reset();
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  await shot(page, info, 'ui-hub-demo');

  await useHubMode(page);
  await shot(page, info, 'ui-hub-hub-form');
  // The lora adapter names piggyback-test/tiny-llama; loading it on the slow mirror asks first.
  await loadHub(page, TEST_REPOS.slow, TEST_REPOS.lora);
  const error = page.getByTestId('load-error');
  await expect(error).toHaveAttribute('data-problem', 'confirm-base');
  await expect(error).toContainText(`the adapter was trained on ${TEST_REPOS.llama}`);
  expect(weightGets(TEST_REPOS.slow)).toEqual([]);
  await shot(page, info, 'ui-hub-confirm');

  await error.getByRole('button', { name: `Load the adapter on ${TEST_REPOS.slow}` }).click();
  const progress = page.getByTestId('load-progress').locator(`[data-model="${TEST_REPOS.slow}"]`);
  await expect(progress).toContainText('model.safetensors');
  await expect(progress).toContainText(/KiB \/ .*KiB/);
  await shot(page, info, 'ui-hub-progress');
  // Cancel mid-download, then load again.
  await page.getByRole('button', { name: 'Cancel loading' }).click();
  await expect(page.getByTestId('load-cancelled')).toBeVisible();
  await page.getByRole('button', { name: 'Load again' }).click();
  await allDone(page);
  await expect(page.getByTestId('last-load').locator(`[data-model="${TEST_REPOS.slow}"]`)).toHaveAttribute(
    'data-cached',
    'false',
  );
  // the cancelled download and the one after it
  expect(weightGets(TEST_REPOS.slow).length).toBeGreaterThanOrEqual(2);
  await shot(page, info, 'ui-hub-loaded');

  // Same models in a fresh page of this browser: from the cache, no weight request.
  server.reset();
  const again = await page.context().newPage();
  await again.goto('/');
  await allDone(again);
  await useHubMode(again);
  await loadHub(again, TEST_REPOS.slow, TEST_REPOS.lora);
  await again
    .getByTestId('load-error')
    .getByRole('button', { name: `Load the adapter on ${TEST_REPOS.slow}` })
    .click();
  await allDone(again);
  await expect(again.getByTestId('last-load').locator(`[data-model="${TEST_REPOS.slow}"]`)).toHaveAttribute(
    'data-cached',
    'true',
  );
  expect(weightGets(TEST_REPOS.slow)).toEqual([]);
  await again.close();

  await page.getByRole('button', { name: 'Clear download cache' }).click();
  await expect(page.getByTestId('cache-note')).toContainText(/Freed \d/);
  await shot(page, info, 'ui-hub-cleared');
  const left = await page.evaluate(async () => {
    const c = await caches.open('piggyback-downloads-v2');
    return (await c.keys()).length;
  });
  expect(left).toBe(0);
  expect(errors()).toEqual([]);
});

test('a browser that refuses to cache the weights (private window): the load answers and says "not cached"', async ({
  page,
}, info) => {
  server.reset();
  await page.goto('/');
  await allDone(page);
  // NOTE: the downloads run in the engine worker, where addInitScript does not reach: make its Cache
  // Storage refuse weights the way Chromium's off-the-record one refuses 988 MB.
  // (only the engine worker: ORT's WASM threads wait in Atomics.wait and would never answer)
  const workers = page.workers().filter((w) => /engine\.worker/.test(w.url()));
  expect(workers).toHaveLength(1);
  for (const w of workers) {
    await w.evaluate(() => {
      const put = Cache.prototype.put;
      Cache.prototype.put = function (req: RequestInfo | URL, res: Response) {
        if (
          String(typeof req === 'string' ? req : req instanceof URL ? req.href : req.url).endsWith(
            '.safetensors',
          )
        )
          return Promise.reject(
            new DOMException(
              "Failed to execute 'put' on 'Cache': Unexpected internal error.",
              'UnknownError',
            ),
          );
        return put.call(this, req, res);
      };
    });
  }
  await useHubMode(page);
  await loadHub(page, TEST_REPOS.llama, TEST_REPOS.lora);
  await allDone(page);
  const row = page.getByTestId('last-load').locator(`[data-model="${TEST_REPOS.llama}"]`);
  await expect(row.getByTestId('not-cached')).toContainText(
    /not cached: this browser refused to store .* \(private window or no space\); the next visit downloads again/,
  );
  await expect(
    page.getByTestId('last-load').locator(`[data-model="${TEST_REPOS.lora}"]`).getByTestId('not-cached'),
  ).toBeVisible();
  expect(weightGets(TEST_REPOS.llama)).toHaveLength(1);
  await shot(page, info, 'ui-hub-not-cached');
});

test('a gated repo asks for a token; the token works and stays out of links, specs and the cache', async ({
  page,
}, info) => {
  server.reset();
  await page.goto('/');
  await allDone(page);
  await useHubMode(page);
  await loadHub(page, TEST_REPOS.gated, '', TEST_REPOS.llamaFt);
  const error = page.getByTestId('load-error');
  await expect(error).toHaveAttribute('data-problem', 'auth');
  await expect(error).toContainText(`${TEST_REPOS.gated} is gated`);
  await shot(page, info, 'ui-hub-gated');

  // A token whose access request is still pending: 403, with what to do.
  await error.getByRole('button', { name: 'Enter a token' }).click();
  await expect(page.locator('#hf-token-input')).toBeFocused();
  await page.keyboard.type(TEST_TOKENS.unapproved);
  await page.getByRole('button', { name: 'Use token' }).click();
  await expect(error).toContainText('has no access yet');
  await expect(error).toHaveAttribute('data-problem', 'auth');

  await error.getByRole('button', { name: 'Enter a token' }).click();
  await expect(page.locator('#hf-token-input')).toBeFocused();
  await page.keyboard.type(TEST_TOKENS.approved);
  await page.getByRole('button', { name: 'Use token' }).click();
  await expect(page.getByTestId('token-state')).toContainText('token set');
  await allDone(page);
  expect(server.requests.some((r) => r.auth === 'approved')).toBe(true);
  await expect(page.locator('#hf-token-input')).toHaveValue('');

  await page.getByTestId('copy-link').click();
  const link = await page.getByTestId('share-link').inputValue();
  expect(link).not.toContain(TEST_TOKENS.approved);
  const decoded = decodeLink(link);
  if (!decoded.ok) throw new Error(decoded.error.message);
  expect(JSON.stringify(decoded.spec)).not.toContain(TEST_TOKENS.approved);
  expect(decoded.spec.models.base.source).toEqual({ kind: 'hub', repo: TEST_REPOS.gated });
  const stored = await page.evaluate(async () => {
    const c = await caches.open('piggyback-downloads-v2');
    const keys = (await c.keys()).map((r) => r.url);
    return {
      keys,
      local: JSON.stringify({ ...localStorage }),
      session: JSON.stringify({ ...sessionStorage }),
      hash: location.href,
    };
  });
  expect(stored.keys.length).toBeGreaterThan(0);
  expect(JSON.stringify(stored)).not.toContain(TEST_TOKENS.approved);

  // Remember for this tab: sessionStorage only, and a reload loads the gated repo again.
  await page.getByLabel(/Remember for this tab/).check();
  await page.locator('#hf-token-input').fill(TEST_TOKENS.approved);
  await page.getByRole('button', { name: 'Use token' }).click();
  await expect(page.getByTestId('token-state')).toContainText('kept for this tab');
  expect(await page.evaluate(() => JSON.stringify({ ...localStorage }))).not.toContain(TEST_TOKENS.approved);
  expect(await page.evaluate(() => JSON.stringify({ ...sessionStorage }))).toContain(TEST_TOKENS.approved);
  await page.getByRole('button', { name: 'Forget token' }).click();
  await expect(page.getByTestId('token-state')).toContainText('no token');
  expect(await page.evaluate(() => JSON.stringify({ ...sessionStorage }))).not.toContain(
    TEST_TOKENS.approved,
  );
});

test('a model too big for the backend is refused before its download, with an int8 button', async ({
  page,
}, info) => {
  server.reset();
  await page.goto('/');
  await allDone(page);
  await useHubMode(page);
  // A repo that does not exist first: the 404 says what to check.
  await loadHub(page, 'piggyback-test/no-such-model', '', TEST_REPOS.llamaFt);
  await expect(page.getByTestId('load-error')).toContainText('piggyback-test/no-such-model was not found on');
  await loadHub(page, TEST_REPOS.tooBig, '', TEST_REPOS.llamaFt);
  const error = page.getByTestId('load-error');
  await expect(error).toHaveAttribute('data-problem', 'memory');
  await expect(error).toContainText('does not fit in fp32');
  expect(weightGets(TEST_REPOS.tooBig)).toEqual([]);
  await shot(page, info, 'ui-hub-memory');
  // WASM: int8 is the first lighter dtype that fits (q4 would too, but decodes 10–20× slower there)
  await error.getByRole('button', { name: /Switch to 8-bit weights \(int8\)/ }).click();
  await expect(page.getByLabel('Weights')).toHaveValue('int8');
});

test('a base + full finetune that does not fit the (smaller) WASM heap in fp32 loads and answers in int8', async ({
  page,
}, info) => {
  // NOTE: the pair of tiny fixtures stands in for Qwen2.5-0.5B + its full finetune (2 × 2 GB fp32 in a 4 GiB
  // heap): `?wasm-heap=` makes the check assume a heap between what the pair needs in int8 and in fp32,
  // computed with the planner's own estimate (its rule: both sessions plus the second one's staging).
  const arch = parseConfig(JSON.parse(fs.readFileSync('fixtures/tiny-llama/config.json', 'utf8')));
  const need = (dtype: 'fp32' | 'int8') => {
    const e = estimateMemory(arch, { dtype, contextLength: 1024 });
    return 2 * e.totalBytes + e.weightsBytes;
  };
  const heapKiB = Math.round((need('fp32') + need('int8')) / 2 / 1024);
  expect(need('int8')).toBeLessThan(heapKiB * 1024);
  expect(need('fp32')).toBeGreaterThan(heapKiB * 1024);
  server.reset();
  const errors = watchConsole(page);
  await page.goto(`/?wasm-heap=${heapKiB}K`);
  await allDone(page);
  await expect(page.getByTestId('wasm-heap')).toHaveAttribute('data-bytes', String(heapKiB * 1024));
  await useHubMode(page);
  await loadHub(page, TEST_REPOS.llama, '', TEST_REPOS.llamaFt);
  const error = page.getByTestId('load-error');
  await expect(error).toHaveAttribute('data-problem', 'memory');
  await expect(error).toContainText('its 2 sessions');
  await expect(error).toContainText('WebAssembly heap this page was given');
  expect(weightGets(TEST_REPOS.llama)).toEqual([]);
  expect(weightGets(TEST_REPOS.llamaFt)).toEqual([]);
  await error.getByRole('button', { name: /Switch to 8-bit weights \(int8\)/ }).click();
  await expect(page.getByLabel('Weights')).toHaveValue('int8');
  await expect(error).toBeHidden();
  await allDone(page);
  await expect(panel(page).locator('.model-list')).toContainText(TEST_REPOS.llamaFt);
  // both sessions were built in int8 (the list says each model's dtype)
  await expect(panel(page).locator('.model-list')).toHaveText(/int8[\s\S]*int8/);
  expect(weightGets(TEST_REPOS.llama).length).toBe(1);
  expect(weightGets(TEST_REPOS.llamaFt).length).toBe(1);
  await expect(page.getByTestId('load-error')).toHaveCount(0);
  await shot(page, info, 'ui-hub-int8-pair');
  expect(errors()).toEqual([]);
});

test('an adapter naming a re-upload as its base: load it on the base it names instead', async ({ page }) => {
  server.reset();
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  await useHubMode(page);
  await loadHub(page, TEST_REPOS.llama, TEST_REPOS.mirrorOrganism);
  const error = page.getByTestId('load-error');
  await expect(error).toHaveAttribute('data-problem', 'confirm-base');
  await error.getByRole('button', { name: `Use ${TEST_REPOS.mirror} as the base` }).click();
  await allDone(page);
  await expect(panel(page).locator('.model-list')).toContainText(TEST_REPOS.mirror);
  expect(weightGets(TEST_REPOS.llama)).toEqual([]);
  expect(weightGets(TEST_REPOS.mirror).length).toBe(1);
  expect(errors()).toEqual([]);
});

test('URL mode and a local folder picked with the directory input', async ({ page }, info) => {
  server.reset();
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  await page.getByLabel('model pair source').selectOption('url');
  await page.getByLabel('base URL').fill(`${server.url}/${TEST_REPOS.llama}`);
  await page.getByLabel('adapter URL').fill(`${server.url}/${TEST_REPOS.lora}`);
  await shot(page, info, 'ui-hub-url-form');
  await page.getByRole('button', { name: 'Load these models' }).click();
  await allDone(page);

  await page.getByLabel('model pair source').selectOption('local');
  await page.getByLabel('Base model folder: choose a folder').setInputFiles('fixtures/tiny-llama');
  await page.getByLabel('LoRA adapter folder: choose a folder').setInputFiles('fixtures/tiny-llama-lora');
  await expect(page.getByTestId('local-base')).toContainText('tiny-llama · 5 files');
  await shot(page, info, 'ui-hub-local');
  server.reset();
  await page.getByRole('button', { name: 'Load these folders' }).click();
  await allDone(page);
  expect(server.requests).toEqual([]);
  await page.getByTestId('copy-link').click();
  const link = await page.getByTestId('share-link').inputValue();
  const decoded = decodeLink(link);
  if (!decoded.ok) throw new Error(decoded.error.message);
  expect(decoded.spec.models.finetuned).toMatchObject({
    source: { kind: 'local', path: 'tiny-llama' },
    adapter: { kind: 'local', path: 'tiny-llama-lora' },
  });
  expect(errors()).toEqual([]);

  // Whoever opens the link must pick the folders: the panel says so, and picking them runs it.
  const other = await page.context().newPage();
  await other.goto(link);
  await expect(other.getByTestId('load-error')).toHaveAttribute('data-problem', 'local-missing');
  await expect(other.getByTestId('local-missing')).toContainText('tiny-llama, tiny-llama-lora');
  await expect(other.getByTestId('share-local-note')).toContainText('must pick the same folders');
  await shot(other, info, 'ui-hub-local-missing');
  await other.getByLabel('Base model folder: choose a folder').setInputFiles('fixtures/tiny-llama');
  await other.getByLabel('LoRA adapter folder: choose a folder').setInputFiles('fixtures/tiny-llama-lora');
  await expect(other.getByTestId('local-adapter')).toContainText('tiny-llama-lora · 2 files');
  await other.getByRole('button', { name: 'Load these folders' }).click();
  await allDone(other);
  await other.close();
});

test('a model folder dropped on the panel loads', async ({ page }) => {
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  await page.getByLabel('model pair source').selectOption('local');
  // NOTE: a synthetic drop carries loose files (no directory entries): they load as "dropped files".
  const drop = async (testId: string, folder: string, names: string[]) => {
    const dt = await page.evaluateHandle(
      async ({ folder, names }) => {
        const dt = new DataTransfer();
        for (const n of names) {
          const bytes = await (await fetch(`/fixtures/${folder}/${n}`)).arrayBuffer();
          dt.items.add(new File([bytes], n));
        }
        return dt;
      },
      { folder, names },
    );
    await page.getByTestId(testId).dispatchEvent('dragover', { dataTransfer: dt });
    await page.getByTestId(testId).dispatchEvent('drop', { dataTransfer: dt });
  };
  await drop('local-base', 'tiny-llama', [
    'config.json',
    'model.safetensors',
    'tokenizer.json',
    'tokenizer_config.json',
  ]);
  await drop('local-finetuned', 'tiny-llama-ft', [
    'config.json',
    'model.safetensors',
    'tokenizer.json',
    'tokenizer_config.json',
  ]);
  await expect(page.getByTestId('local-base')).toContainText('dropped files · 4 files');
  await expect(page.getByTestId('local-finetuned')).toContainText('dropped files (2) · 4 files');
  await page.getByRole('button', { name: 'Load these folders' }).click();
  await allDone(page);
  await expect(panel(page).locator('.model-list')).toContainText('local: dropped files (2)');
  expect(errors()).toEqual([]);
});

test('demo mode: compare the organism base with each finetune', async ({ page }, info) => {
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  for (const name of ['demo-treft', 'demo-interleave', 'demo-lora', 'demo-finetuned']) {
    await page.getByTestId(`demo-${name}`).check();
    await allDone(page);
  }
  await page.getByTestId('demo-demo-lora').check();
  await allDone(page);
  await expect(panel(page).locator('.model-list')).toContainText('LoRA demo-lora');
  await shot(page, info, 'ui-hub-demo-lora');
  // The catalog lists the real organisms (choosing one would download from the real Hub: not here).
  await page.getByLabel('model pair source').selectOption('catalog');
  await expect(page.getByTestId('catalog')).toContainText('Qwen2.5-0.5B · bad medical advice');
  await shot(page, info, 'ui-hub-catalog');
  expect(errors()).toEqual([]);
});
