// The lab UI against the real engine worker and the embedded demo (WASM; the first test and the heatmap also on WebGPU, the engine's GPU path): issue 5's
// "Done when" list — every default condition answers; a token edit changes the perturbed card's tokens;
// K/V ↔ residual updates the patched card; the heatmap has one cell per layer × prefix position; a copied
// link restores the spec with identical greedy answers; a garbage link shows an error and the demo.
import { test, expect, type Page } from '@playwright/test';
import { screenshot, watchConsole } from './helpers';

const DEFAULT_IDS = ['base', 'finetuned', 'finetuned-perturbed-prefix', 'finetuned-kv-patched-prefix'];

async function allDone(page: Page, ids: string[] = DEFAULT_IDS): Promise<void> {
  for (const id of ids) {
    const answer = page.locator(
      `[data-testid="condition-card"][data-condition-id="${id}"] [data-testid="answer"]`,
    );
    await expect(answer).toHaveAttribute('data-done', 'true', { timeout: 180_000 });
    await expect(answer).not.toHaveText('');
  }
}

async function answers(page: Page): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const card of await page.getByTestId('condition-card').all()) {
    const id = (await card.getAttribute('data-condition-id')) ?? '';
    out[id] = (await card.getByTestId('answer').textContent()) ?? '';
  }
  return out;
}

test('opens on the embedded demo and every default condition answers', async ({ page }, info) => {
  const errors = watchConsole(page);
  await page.goto('/');
  await expect(page.getByTestId('condition-card')).toHaveCount(4);
  const ids = await page
    .getByTestId('condition-card')
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-condition-id')));
  expect(ids).toEqual(DEFAULT_IDS);
  await allDone(page);
  const strip = page.getByTestId('token-strip');
  await expect(strip.getByTestId('token').first()).toBeVisible();
  for (const seg of ['prefix', 'query', 'postfix']) {
    expect(await strip.locator(`[data-testid="token"][data-segment="${seg}"]`).count(), seg).toBeGreaterThan(
      0,
    );
  }
  await screenshot(page, info, 'ui-demo');
  expect(errors()).toEqual([]);
});

test('a token edit changes the perturbed card; K/V ↔ residual updates the patched card', async ({
  page,
}, info) => {
  test.skip(
    info.project.name !== 'wasm',
    'UI flow: wasm project only (the GPU path: engine.spec, smoke, ui-lab demo + heatmap)',
  );
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  const perturbed = page.locator(
    '[data-testid="condition-card"][data-condition-id="finetuned-perturbed-prefix"]',
  );

  // Delete the second prefix token for the perturbed condition (the default edit target).
  await page
    .locator('[data-testid="token-strip"] [data-testid="token"][data-segment="prefix"]')
    .nth(1)
    .click();
  await expect(page.getByTestId('token-editor')).toBeVisible();
  await page.getByRole('button', { name: 'Delete this token' }).click();
  await expect(perturbed.locator('.card-desc').first()).toContainText('1 hand edit');
  await allDone(page, ['finetuned-perturbed-prefix']);
  // The card's tokens are what it ran: one fewer prefix token than the base prompt.
  const basePrefix = await page
    .locator('[data-testid="token-strip"] [data-testid="token"][data-segment="prefix"]')
    .count();
  await expect(perturbed.locator('[data-testid="card-token"][data-segment="prefix"]')).toHaveCount(
    basePrefix - 1,
  );
  // Replace a token by typed text: the card shows an edited token.
  await page
    .locator('[data-testid="token-strip"] [data-testid="token"][data-segment="prefix"]')
    .nth(2)
    .click();
  await page.getByTestId('replace-text').fill('zz');
  await page.getByRole('button', { name: 'Replace', exact: true }).click();
  await allDone(page, ['finetuned-perturbed-prefix']);
  expect(await perturbed.locator('[data-testid="card-token"][data-edited="true"]').count()).toBeGreaterThan(
    0,
  );
  await screenshot(page, info, 'ui-token-edit');

  const patched = page.locator(
    '[data-testid="condition-card"][data-condition-id="finetuned-kv-patched-prefix"]',
  );
  await allDone(page); // the token edit re-ran every card
  const kvAnswer = await patched.getByTestId('answer').textContent();
  const controls = page.getByTestId('patch-controls');
  await controls.getByLabel('Residual').check();
  await expect(patched.locator('.card-desc').first()).toContainText('residual');
  // an untouched title follows the settings (so exports carry the right label)
  await expect(patched.getByTestId('card-title')).toHaveText(/prefix residual from base/);
  await allDone(page, ['finetuned-kv-patched-prefix']);
  await screenshot(page, info, 'ui-patch-resid');
  await controls.getByLabel('K/V').check();
  await expect(patched.locator('.card-desc').first()).toContainText('K/V');
  await expect(patched.getByTestId('card-title')).toHaveText(/prefix K\/V from base/);
  await allDone(page, ['finetuned-kv-patched-prefix']);
  // Greedy decoding: back to K/V gives the K/V answer again.
  await expect(patched.getByTestId('answer')).toHaveText(kvAnswer ?? '');
  expect(errors()).toEqual([]);
});

test('the heatmap has one cell per layer × prefix position', async ({ page }, info) => {
  // NOTE: SwiftShader runs WebGPU on the CPU; this test runs the models several times.
  test.slow(info.project.name === 'webgpu');
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  const prefix = await page
    .locator('[data-testid="token-strip"] [data-testid="token"][data-segment="prefix"]')
    .count();
  await page.getByTestId('run-sweep').click();
  const heatmap = page.getByTestId('heatmap');
  await expect(page.getByTestId('run-sweep')).toBeVisible({ timeout: 200_000 });
  const layersText = await page.locator('.model-row').first().textContent();
  const layers = Number(/(\d+) layers/.exec(layersText ?? '')?.[1]);
  expect(layers).toBeGreaterThan(0);
  await expect(heatmap.locator('rect.cell')).toHaveCount(layers * prefix);
  const distinctLayers = await heatmap
    .locator('rect.cell')
    .evaluateAll((els) => new Set(els.map((e) => e.getAttribute('data-layer'))).size);
  expect(distinctLayers).toBe(layers);
  // No cell is left uncomputed once the sweep is done.
  expect(await heatmap.locator('rect.cell[data-value="NaN"]').count()).toBe(0);
  // Hover reads a value; clicking a cell adds it as a condition.
  await heatmap.locator('rect.cell').first().hover();
  await expect(page.getByTestId('heatmap-readout')).toContainText('layer');
  await heatmap.locator('rect.cell').first().click();
  await expect(page.getByTestId('condition-card')).toHaveCount(5);
  await screenshot(page, info, 'ui-heatmap');
  expect(errors()).toEqual([]);
});

test('a copied link restores the spec and gives identical greedy answers', async ({
  page,
  context,
}, info) => {
  test.skip(
    info.project.name !== 'wasm',
    'UI flow: wasm project only (the GPU path: engine.spec, smoke, ui-lab demo + heatmap)',
  );
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  // Make the spec differ from the default: a new question and a renamed card.
  const oldBase = (await answers(page)).base;
  await page.getByTestId('user-input').fill('How do I make a quick buck?');
  await page.getByTestId('user-input').blur();
  await page.locator('[data-condition-id="base"]').getByRole('button', { name: 'rename Base' }).click();
  const title = page.locator('[data-condition-id="base"]').getByTestId('card-title-input');
  await title.fill('Base model');
  await title.press('Enter');
  await expect(page.locator('[data-condition-id="base"]').getByTestId('card-title')).toHaveText(/Base model/);
  // The new question gives a new answer (the old one stays, marked stale, until then).
  await expect(page.locator('[data-condition-id="base"] [data-testid="answer"]')).not.toHaveText(oldBase, {
    timeout: 180_000,
  });
  await allDone(page);
  const before = await answers(page);
  await page.getByTestId('copy-link').click();
  const link = await page.getByTestId('share-link').inputValue();
  expect(link).toContain('#spec=v1.');
  expect(page.url()).toBe(link);

  const fresh = await context.newPage();
  const freshErrors = watchConsole(fresh);
  await fresh.goto(link);
  await expect(fresh.getByTestId('experiment-name')).toContainText('opened from a link');
  await expect(fresh.getByTestId('user-input')).toHaveValue('How do I make a quick buck?');
  await expect(fresh.locator('[data-condition-id="base"]').getByTestId('card-title')).toHaveText(
    /Base model/,
  );
  await allDone(fresh);
  expect(await answers(fresh)).toEqual(before);
  await screenshot(fresh, info, 'ui-link-restored');
  expect(errors()).toEqual([]);
  expect(freshErrors()).toEqual([]);
});

test('a garbage link shows an error and the default demo', async ({ page }, info) => {
  test.skip(
    info.project.name !== 'wasm',
    'UI flow: wasm project only (the GPU path: engine.spec, smoke, ui-lab demo + heatmap)',
  );
  const errors = watchConsole(page);
  await page.goto('/#spec=v1.this-is-not-a-spec');
  await expect(page.getByRole('alert').first()).toContainText('could not be opened');
  await expect(page.getByTestId('condition-card')).toHaveCount(4);
  await allDone(page);
  await screenshot(page, info, 'ui-bad-link');
  expect(errors()).toEqual([]);
});
