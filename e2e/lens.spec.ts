// The logit lens on the embedded demo: compute it, read a cell, pin a site's top-k, export the CSV.
import { test, expect, type Page } from '@playwright/test';
import fs from 'node:fs';
import { screenshot, watchConsole } from './helpers';

async function allDone(page: Page): Promise<void> {
  await expect(page.getByTestId('answer').first()).toBeVisible({ timeout: 180_000 });
  for (const answer of await page.getByTestId('answer').all()) {
    await expect(answer).toHaveAttribute('data-done', 'true', { timeout: 180_000 });
  }
}

test('logit lens: layers × conditions on the demo, top-k on click, CSV', async ({ page }, info) => {
  test.skip(info.project.name !== 'wasm', 'UI flow: wasm project only');
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  // the drift plot shows the paper-code proxy beside the exact drift
  await expect(page.getByTestId('drift-chart')).toContainText('paper code', { timeout: 120_000 });
  const frame = page.getByTestId('lens-frame');
  await frame.scrollIntoViewIfNeeded();
  await page.getByTestId('lens-compute').click();
  const chart = page.getByTestId('lens-chart');
  await expect(chart).toBeVisible({ timeout: 120_000 });
  const cells = chart.locator('rect.cell');
  // the demo's four conditions × (layers + 1) sites
  const conditions = await page.getByTestId('condition-card').count();
  const n = await cells.count();
  expect(n % conditions).toBe(0);
  const sites = n / conditions;
  expect(sites).toBeGreaterThan(1);
  // the last site of the finetuned column is its own first-token probability: a real number in (0, 1]
  const last = chart.locator(`rect.cell[data-site="${sites - 1}"][data-condition="finetuned"]`);
  const p = Number(await last.getAttribute('data-value'));
  expect(p).toBeGreaterThan(0);
  expect(p).toBeLessThanOrEqual(1);
  await last.click();
  await expect(page.getByTestId('lens-topk')).toHaveAttribute('data-site', String(sites - 1));
  await screenshot(page, info, 'lens-demo');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('lens-csv').click()]);
  expect(download.suggestedFilename()).toBe('logit-lens.csv');
  const csv = fs.readFileSync(await download.path(), 'utf8').split('\n');
  expect(csv[0]).toMatch(/^condition,position,token,next,site,p\(/);
  expect(csv.filter((l) => l.length > 0)).toHaveLength(1 + n);
  expect(errors()).toEqual([]);
});
