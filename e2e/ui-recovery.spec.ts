// After a failed Hub load (issue 15): the error shows once, one click ("Back to the demo") returns to
// the embedded demo, loads it and clears every error box; Undo after a failure does the same.
import { test, expect, type Page } from '@playwright/test';
import { startHubTestServer, TEST_REPOS, type HubTestServer } from '../scripts/hub-test-server';
import { screenshot } from './helpers';

let server: HubTestServer;
test.beforeAll(async () => {
  server = await startHubTestServer({});
});
test.afterAll(async () => {
  await server.close();
});

test.beforeEach(({ browserName: _b }, info) => {
  test.skip(info.project.name !== 'wasm', 'UI flow: wasm project only');
});

async function allDone(page: Page): Promise<void> {
  await expect(page.getByTestId('answer').first()).toBeVisible({ timeout: 240_000 });
  for (const answer of await page.getByTestId('answer').all())
    await expect(answer).toHaveAttribute('data-done', 'true', { timeout: 240_000 });
}

async function failHubLoad(page: Page, setEndpoint: boolean): Promise<void> {
  await page.getByLabel('model pair source').selectOption('hub');
  if (setEndpoint) {
    // the endpoint stays set for the tab: the second time 'Set' is disabled
    await page.getByLabel('Hub endpoint').fill(server.url);
    await page.getByTestId('hub-access').getByRole('button', { name: 'Set', exact: true }).click();
  }
  await page.getByLabel('base hub id').fill('piggyback-test/no-such-model');
  await page.getByLabel('finetuned hub id').fill(TEST_REPOS.llamaFt);
  await page.getByRole('button', { name: 'Load these models' }).click();
  await expect(page.getByTestId('load-error')).toContainText('piggyback-test/no-such-model was not found');
  // the message is shown once on the page, in the Models panel's box
  await expect(page.getByRole('alert').filter({ hasText: 'no-such-model' })).toHaveCount(1);
}

test('one click back to the demo after a failed Hub load; Undo recovers too', async ({ page }, info) => {
  // three loads of the demo on a shared CPU
  test.setTimeout(600_000);
  await page.goto('/');
  await allDone(page);
  await failHubLoad(page, true);
  await screenshot(page, info, 'recovery-failed');
  await page.getByTestId('back-to-demo').click();
  await expect(page.getByTestId('load-error')).toHaveCount(0);
  await expect(page.getByLabel('model pair source')).toHaveValue('demo');
  await allDone(page);
  await expect(page.getByRole('alert')).toHaveCount(0);
  await expect(page.getByTestId('verdict').first()).toBeVisible();
  await screenshot(page, info, 'recovery-demo');

  // Undo after a failure: the demo's models come back, load again and the error goes
  await failHubLoad(page, false);
  await page.getByRole('button', { name: 'Undo', exact: true }).first().click();
  await expect(page.getByTestId('load-error')).toHaveCount(0, { timeout: 30_000 });
  await allDone(page);
  await expect(page.getByRole('alert')).toHaveCount(0);
});
