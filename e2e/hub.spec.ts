// Real-model loading in the browser, against the local Hub stand-in (scripts/hub-test-server.ts,
// started here on a random loopback port): a link whose models are a base and a LoRA adapter in the
// Hub's layout loads through the worker (model-info, LFS redirects, Cache Storage), every condition
// answers; a second page loads both from Cache Storage without a single request to the server.
import { test, expect, type Page } from '@playwright/test';
import { startHubTestServer, TEST_REPOS, type HubTestServer } from '../scripts/hub-test-server';
import { defaultSpec, type ExperimentSpec } from '../src/lab/spec/experiment';
import { encodeLink } from '../src/lab/spec/link';
import { screenshot, watchConsole } from './helpers';

let server: HubTestServer;

test.beforeAll(async () => {
  server = await startHubTestServer();
});
test.afterAll(async () => {
  await server.close();
});

async function allDone(page: Page, ids: string[]): Promise<void> {
  for (const id of ids) {
    const answer = page.locator(
      `[data-testid="condition-card"][data-condition-id="${id}"] [data-testid="answer"]`,
    );
    await expect(answer).toHaveAttribute('data-done', 'true', { timeout: 180_000 });
    await expect(answer).not.toHaveText('');
  }
}

function hubSpec(): ExperimentSpec {
  const base = { kind: 'url' as const, url: `${server.url}/${TEST_REPOS.llama}` };
  return {
    ...defaultSpec(),
    name: 'Hub stand-in: tiny LoRA organism',
    models: {
      base: { source: base, role: 'base' },
      finetuned: {
        source: base,
        adapter: { kind: 'url', url: `${server.url}/${TEST_REPOS.lora}` },
        role: 'finetuned',
      },
    },
    conditions: [
      { id: 'base', label: 'Base', model: 'base' },
      { id: 'finetuned', label: 'Finetuned (LoRA)', model: 'finetuned' },
    ],
  };
}

test('a base + LoRA adapter from the Hub layout runs; a second load comes from the cache with no request', async ({
  page,
  context,
  baseURL,
}, info) => {
  server.reset();
  const errors = watchConsole(page);
  const link = encodeLink(hubSpec(), `${baseURL}/`);
  if (!link.ok) throw new Error(link.error.message);
  await page.goto(link.url);
  await allDone(page, ['base', 'finetuned']);
  const paths = server.requests.map((r) => r.path);
  expect(paths).toContain(`/api/models/${TEST_REPOS.llama}/revision/main`);
  expect(paths).toContain(`/api/models/${TEST_REPOS.lora}/revision/main`);
  expect(
    paths.some((p) => p.startsWith(`/cdn/${TEST_REPOS.llama}/`) && p.endsWith('/model.safetensors')),
  ).toBe(true);
  expect(paths.some((p) => p.endsWith('/adapter_model.safetensors'))).toBe(true);
  const first = await page.getByTestId('answer').allTextContents();
  await screenshot(page, info, 'hub-first-load');

  server.reset();
  const fresh = await context.newPage();
  const freshErrors = watchConsole(fresh);
  await fresh.goto(link.url);
  await allDone(fresh, ['base', 'finetuned']);
  expect(server.requests).toEqual([]);
  expect(await fresh.getByTestId('answer').allTextContents()).toEqual(first);
  await screenshot(fresh, info, 'hub-from-cache');
  expect(errors()).toEqual([]);
  expect(freshErrors()).toEqual([]);
});
