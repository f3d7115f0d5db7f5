// The mechanism views on the embedded demo (issue 17): attention to the prefix (mass per region sums to
// one, the finetuned − base map and its strongest head) and per-head K/V patching (layers × KV heads,
// a click adds that per-head patch as a condition). WASM project only: UI flows over engine paths the
// unit tests cover.
import { test, expect, type Page } from '@playwright/test';
import { SCREENSHOT_DIR, screenshot, watchConsole } from './helpers';

test.beforeEach(({ browserName: _b }, info) => {
  test.skip(info.project.name !== 'wasm', 'UI flow: wasm project only');
});

async function ready(page: Page): Promise<void> {
  await expect(page.getByTestId('answer').first()).toBeVisible({ timeout: 120_000 });
  for (const answer of await page.getByTestId('answer').all())
    await expect(answer).toHaveAttribute('data-done', 'true', { timeout: 180_000 });
}

test('attention to the prefix and per-head K/V patching on the demo', async ({ page }, info) => {
  const errors = watchConsole(page);
  await page.goto('/');
  await ready(page);

  await page.getByTestId('run-attention').click();
  const diff = page.getByTestId('attention-diff-heatmap');
  await expect(diff.locator('rect.cell')).toHaveCount(4 * 4, { timeout: 120_000 });
  await expect(page.getByTestId('attention-strongest')).toContainText(/layer \d+, head \d+/);
  const table = page.getByTestId('attention-mass-table');
  await expect(table.locator('tbody tr')).toHaveCount(4);
  await page.getByTestId('attention-panel').scrollIntoViewIfNeeded();
  await page
    .getByTestId('attention-panel')
    .screenshot({ path: `${SCREENSHOT_DIR}/attention-mass-panel.png` });
  await screenshot(page, info, 'attention-mass');

  await page.getByTestId('run-head-sweep').click();
  const heads = page.getByTestId('head-sweep-heatmap');
  // the demo: 4 layers × 2 KV heads (4 query heads, grouped-query attention)
  await expect(heads.locator('rect.cell')).toHaveCount(4 * 2, { timeout: 120_000 });
  await expect(page.getByTestId('run-head-sweep')).toBeVisible({ timeout: 120_000 });
  const values = await heads
    .locator('rect.cell')
    .evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-value'))));
  expect(values.every((v) => Number.isFinite(v))).toBe(true);
  await page.getByTestId('head-sweep-panel').scrollIntoViewIfNeeded();
  await page
    .getByTestId('head-sweep-panel')
    .screenshot({ path: `${SCREENSHOT_DIR}/attention-head-sweep-panel.png` });
  await screenshot(page, info, 'attention-head-sweep');

  const before = await page.getByTestId('condition-card').count();
  await heads.locator('rect.cell').nth(1).click();
  await expect(page.getByTestId('condition-card')).toHaveCount(before + 1);
  await expect(page.locator('[data-testid="condition-card"][data-condition-id="kv-l0-h1"]')).toBeVisible();
  expect(errors()).toEqual([]);
});
