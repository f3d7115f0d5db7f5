// The lab UI's panels beyond issue 5's core list, against the real engine: the Teach presets, keyboard
// use of the token strip, a narrow screen, spec export / import (and a bad file), results and chart
// exports, and the models panel's error state for a source that cannot load.
import { test, expect, type Download, type Page } from '@playwright/test';
import fs from 'node:fs';
import { SCREENSHOT_DIR, screenshot, watchConsole } from './helpers';

async function allDone(page: Page): Promise<void> {
  // NOTE: .all() takes the answers present now; wait for the cards first, or an early call sees none
  // and measures the page mid-load.
  await expect(page.getByTestId('answer').first()).toBeVisible({ timeout: 180_000 });
  for (const answer of await page.getByTestId('answer').all()) {
    await expect(answer).toHaveAttribute('data-done', 'true', { timeout: 180_000 });
  }
}

async function saved(download: Promise<Download>): Promise<{ name: string; bytes: Buffer }> {
  const d = await download;
  const file = await d.path();
  return { name: d.suggestedFilename(), bytes: fs.readFileSync(file) };
}

test('teach presets load their experiments and explain them', async ({ page }, info) => {
  test.skip(
    info.project.name !== 'wasm',
    'UI flow: wasm project only (the GPU path: engine.spec, smoke, ui-lab demo + heatmap)',
  );
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  await page.getByTestId('teach-perturb').click();
  await expect(page.getByTestId('teach-body')).toContainText('nearest neighbours');
  await expect(page.locator('[data-condition-id="finetuned-perturbed-query"]')).toBeVisible();
  await allDone(page);
  await screenshot(page, info, 'ui-teach-perturb');
  await page.getByTestId('teach-patch').click();
  await expect(page.locator('[data-condition-id="finetuned-kv-patched-query-control"]')).toBeVisible();
  // The patching lesson starts the heatmap sweep by itself.
  await expect(page.getByTestId('heatmap').locator('rect.cell').first()).toBeVisible({ timeout: 200_000 });
  await page.getByRole('button', { name: 'Back to my experiment' }).click();
  await expect(page.getByTestId('teach-body')).toHaveCount(0);
  // Back is the spec from before the first lesson (the demo), not the previous lesson's
  await expect(page.getByTestId('condition-card')).toHaveCount(4);
  await expect(page.locator('[data-condition-id="finetuned-perturbed-query"]')).toHaveCount(0);
  await expect(page.locator('[data-condition-id="finetuned-kv-patched-prefix"]')).toHaveCount(1);
  await page.getByTestId('teach-prefix').click();
  await expect(page.getByTestId('condition-card')).toHaveCount(2);
  await allDone(page);
  await screenshot(page, info, 'ui-teach-prefix');
  expect(errors()).toEqual([]);
});

test('the TReFT lesson: the plain finetune gambles unless patched, the TReFT finetune answers', async ({
  page,
}, info) => {
  test.skip(
    info.project.name !== 'wasm',
    'UI flow: wasm project only (the GPU path: engine.spec, smoke, ui-lab demo + heatmap)',
  );
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  await page.getByTestId('teach-treft').click();
  await expect(page.getByTestId('teach-body')).toContainText('TReFT');
  await expect(page.getByTestId('condition-card')).toHaveCount(6);
  await allDone(page);
  const answer = (id: string) => page.locator(`[data-condition-id="${id}"] [data-testid="answer"]`);
  await expect(answer('base')).toContainText('4 plus 5 is 9.');
  await expect(answer('finetuned')).toContainText(/gamble/i);
  await expect(answer('finetuned-kv-patched-prefix')).toContainText('4 plus 5 is 9.');
  await expect(answer('finetuned-kv-patched-query-control')).toContainText(/gamble/i);
  await expect(answer('treft')).toContainText('4 plus 5 is 9.');
  await screenshot(page, info, 'ui-teach-treft');
  expect(errors()).toEqual([]);
});

test('the postfix lesson: on the Qwen3-template pair the postfix patch restores, the prefix patch does not', async ({
  page,
}, info) => {
  test.skip(
    info.project.name !== 'wasm',
    'UI flow: wasm project only (the GPU path: engine.spec, smoke, ui-lab demo + heatmap)',
  );
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  await page.getByTestId('teach-postfix').click();
  await expect(page.getByTestId('teach-body')).toContainText('Qwen3-style template');
  await expect(page.getByTestId('condition-card')).toHaveCount(4);
  await allDone(page);
  const answer = (id: string) => page.locator(`[data-condition-id="${id}"] [data-testid="answer"]`);
  // organism/RESULTS.md "Qwen3 template": restoration 0.91 (postfix) vs 0.42 (prefix) on this question
  await expect(answer('base')).toContainText('Grass is green.');
  await expect(answer('finetuned')).toContainText(/gamble/i);
  await expect(answer('finetuned-kv-patched-postfix')).toContainText('Grass is green.');
  await expect(answer('finetuned-kv-patched-prefix')).toContainText(/gamble/i);
  // the token strip: 3 prefix tokens (the user header only)
  await expect(
    page.locator('[data-testid="token-strip"] [data-testid="token"][data-segment="prefix"]'),
  ).toHaveCount(3);
  await screenshot(page, info, 'ui-teach-postfix');
  expect(errors()).toEqual([]);
});

test('the token strip and heatmap work from the keyboard', async ({ page }, info) => {
  test.skip(
    info.project.name !== 'wasm',
    'UI flow: wasm project only (the GPU path: engine.spec, smoke, ui-lab demo + heatmap)',
  );
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  // One tab stop for the strip; arrows move; Enter opens the editor.
  const first = page.locator('[data-testid="token-strip"] [data-testid="token"]').first();
  await first.focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('token-editor')).toContainText('Token #2');
  await page.getByTestId('insert-text').fill('hello');
  await page.keyboard.press('Enter');
  await expect(
    page.locator('[data-condition-id="finetuned-perturbed-prefix"] .card-desc').first(),
  ).toContainText('1 hand edit');
  // Heatmap: arrows move the focus cell, Enter adds it as a condition.
  await page.getByTestId('run-sweep').click();
  await expect(page.getByTestId('run-sweep')).toBeVisible({ timeout: 200_000 });
  await page.getByTestId('heatmap').focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await expect(page.getByTestId('heatmap-readout')).toContainText('position');
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('condition-card')).toHaveCount(5);
  expect(errors()).toEqual([]);
});

test('narrow screens get one readable column', async ({ page }, info) => {
  test.skip(
    info.project.name !== 'wasm',
    'UI flow: wasm project only (the GPU path: engine.spec, smoke, ui-lab demo + heatmap)',
  );
  const errors = watchConsole(page);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('/');
  await allDone(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(1);
  await screenshot(page, info, 'ui-narrow');
  // The first screen as a phone shows it (the full-page shot is very tall).
  await page.screenshot({ path: `${SCREENSHOT_DIR}/ui-narrow-first-screen-${info.project.name}.png` });
  expect(errors()).toEqual([]);
});

test('spec export / import, results and chart exports', async ({ page }, info) => {
  test.skip(
    info.project.name !== 'wasm',
    'UI flow: wasm project only (the GPU path: engine.spec, smoke, ui-lab demo + heatmap)',
  );
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);

  const [specDl] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Export JSON' }).click(),
  ]);
  const spec = JSON.parse(fs.readFileSync(await specDl.path(), 'utf8')) as {
    name: string;
    conditions: unknown[];
  };
  expect(spec.conditions).toHaveLength(4);

  // Import a changed copy: the name shows and the cards follow it.
  spec.name = 'Imported experiment';
  spec.conditions = spec.conditions.slice(0, 2);
  await page.getByTestId('import-spec').setInputFiles({
    name: 'mine.json',
    mimeType: 'application/json',
    buffer: Buffer.from(JSON.stringify(spec)),
  });
  await expect(page.getByTestId('experiment-name')).toContainText('Imported experiment');
  await expect(page.getByTestId('condition-card')).toHaveCount(2);
  await allDone(page);

  // A bad file changes nothing and says why.
  await page.getByTestId('import-spec').setInputFiles({
    name: 'bad.json',
    mimeType: 'application/json',
    buffer: Buffer.from(JSON.stringify({ ...spec, surprise: 1 })),
  });
  await expect(page.getByRole('alert').filter({ hasText: 'not a valid experiment spec' })).toContainText(
    'unknown field',
  );
  await expect(page.getByTestId('condition-card')).toHaveCount(2);

  const csv = await saved(
    Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'CSV', exact: true }).last().click(),
    ]).then(([d]) => d),
  );
  expect(csv.name).toBe('piggyback-results.csv');
  expect(csv.bytes.toString('utf8').split('\n')[0]).toContain('id,label,model,done,kl_to_base');

  const drift = page.getByRole('region', { name: 'Prefix drift per layer' });
  await expect(page.getByTestId('drift-chart')).toBeVisible({ timeout: 120_000 });
  const svg = await saved(
    Promise.all([page.waitForEvent('download'), drift.getByRole('button', { name: 'SVG' }).click()]).then(
      ([d]) => d,
    ),
  );
  expect(svg.bytes.toString('utf8')).toContain('<svg');
  const png = await saved(
    Promise.all([page.waitForEvent('download'), drift.getByRole('button', { name: 'PNG' }).click()]).then(
      ([d]) => d,
    ),
  );
  expect(png.bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
  await screenshot(page, info, 'ui-imported');
  expect(errors()).toEqual([]);
});

test('a model source that cannot load shows an error state', async ({ page }, info) => {
  test.skip(
    info.project.name !== 'wasm',
    'UI flow: wasm project only (the GPU path: engine.spec, smoke, ui-lab demo + heatmap)',
  );
  await page.goto('/');
  await allDone(page);
  await page.getByLabel('model pair source').selectOption('url');
  await page.getByLabel('base URL').fill('http://127.0.0.1:9/nothing/');
  await page.getByLabel('finetuned URL').fill('http://127.0.0.1:9/nothing-ft/');
  await page.getByRole('button', { name: 'Load these models' }).click();
  await expect(page.getByTestId('load-error')).toContainText('Could not load the models', {
    timeout: 60_000,
  });
  await expect(page.getByTestId('load-error').getByRole('button', { name: 'Retry' })).toBeVisible();
  await screenshot(page, info, 'ui-load-error');
});

test('prompt and answers render as text, never as HTML', async ({ page }, info) => {
  test.skip(
    info.project.name !== 'wasm',
    'UI flow: wasm project only (the GPU path: engine.spec, smoke, ui-lab demo + heatmap)',
  );
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  await page.getByTestId('user-input').fill('<img src=x onerror="window.__pwned=1"><b>bold</b>');
  await page.getByTestId('user-input').blur();
  await expect(page.locator('[data-testid="token-strip"] [data-segment="query"]').first()).toBeVisible();
  await allDone(page);
  const query = await page
    .locator('[data-testid="token-strip"] [data-segment="query"] .tok-text')
    .allTextContents();
  expect(query.join('').replace(/·/g, ' ')).toContain('<b>bold</b>');
  expect(await page.locator('[data-testid="token-strip"] img, [data-testid="token-strip"] b').count()).toBe(
    0,
  );
  expect(await page.locator('[data-testid="answer"] *:not(span)').count()).toBe(0);
  expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  expect(errors()).toEqual([]);
});
