// The heatmap answers "which layer?" on the embedded demo: its colour scale is fixed (−1 … 1 in
// restoration units, whatever the cells are), the full-prefix patch is marked on the legend with the value
// the prefix-patched card shows, the per-layer patch runs with the sweep (no extra click) and names the
// strongest layer and position, residual rows are keyed (0 = embeddings … out), a click that adds a
// cell's card keeps the map where it was on screen, and on a phone the legend stays inside its box.
import { test, expect, type Page } from '@playwright/test';
import { screenshot, watchConsole } from './helpers';

// NOTE: a UI flow over engine paths ui-lab.spec.ts covers on both projects: wasm only.
test.beforeEach(({ browserName: _b }, info) => {
  test.skip(info.project.name !== 'wasm', 'UI flow: wasm project only');
});

async function allDone(page: Page): Promise<void> {
  await expect(page.getByTestId('answer').first()).toBeVisible({ timeout: 120_000 });
  for (const answer of await page.getByTestId('answer').all())
    await expect(answer).toHaveAttribute('data-done', 'true', { timeout: 180_000 });
}

/** The smallest of a fill colour's r, g, b channels (255 = white). */
const minChannel = (fill: string): number => Math.min(...(fill.match(/\d+/g) ?? []).slice(0, 3).map(Number));

test('the heatmap has a fixed scale, the full-prefix patch as reference, and names the strongest layer', async ({
  page,
}, info) => {
  test.setTimeout(420_000);
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  const prefixCard = page.locator(
    '[data-testid="condition-card"][data-condition-id="finetuned-kv-patched-prefix"]',
  );
  const cardRestoration = Number(await prefixCard.getByTestId('metric-restoration').textContent());
  expect(cardRestoration).toBeGreaterThan(0.3);

  await page.getByTestId('run-sweep').click();
  await expect(page.getByTestId('run-sweep')).toBeVisible({ timeout: 200_000 });
  const heatmap = page.getByTestId('heatmap');
  const values = await heatmap
    .locator('rect.cell')
    .evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-value'))));
  const top = Math.max(...values);
  // The legend's domain is the fixed restoration scale, not the cells' range (they stay well inside it).
  await expect(page.getByTestId('heatmap-legend')).toHaveAttribute('data-domain', '-1,1');
  expect(top).toBeLessThan(0.5);
  // So the strongest cell looks faint: nearly white, not the darkest colour.
  const topFill = await heatmap
    .locator('rect.cell')
    .nth(values.indexOf(top))
    .evaluate((e) => getComputedStyle(e).fill);
  expect(minChannel(topFill)).toBeGreaterThan(180);

  // The reference: every layer at every prefix position, as the prefix-patched card (2 decimals).
  const ref = page.getByTestId('heatmap-reference');
  const refValue = Number(await ref.getAttribute('data-value'));
  expect(refValue).toBeCloseTo(cardRestoration, 2);
  await expect(ref).toHaveText(`full prefix patch: ${refValue.toFixed(2)}`);

  // The per-layer patch came with the sweep, without pressing "Per layer".
  const perLayer = page.getByTestId('per-layer-reading');
  await expect(perLayer).toContainText(/Strongest layer: layer \d+/);
  await expect(perLayer).toContainText(/layer \d+ restores the most \(\d\.\d\d/);
  // NOTE: the legend's data-value carries 4 decimals
  expect(Number(await perLayer.getAttribute('data-full'))).toBeCloseTo(refValue, 3);
  const strongest = page.getByTestId('strongest-position');
  const cellPos = await heatmap.locator('rect.cell').nth(values.indexOf(top)).getAttribute('data-position');
  await expect(strongest).toHaveAttribute('data-position', cellPos ?? '');
  await expect(strongest).toContainText(`restores ${top.toFixed(2)}`);
  await page.locator('section.chart-frame[aria-label="Patching heatmap"]').screenshot({
    path: `e2e-screenshots/ui-heatmap-scale-${info.project.name}.png`,
  });

  // A click adds the cell's card above the map; the map stays where it was on screen.
  await heatmap.scrollIntoViewIfNeeded();
  const before = await heatmap.evaluate((e) => e.getBoundingClientRect().top);
  const cards = await page.getByTestId('condition-card').count();
  await heatmap.locator('rect.cell').nth(2).click();
  await expect(page.getByTestId('condition-card')).toHaveCount(cards + 1);
  await allDone(page);
  // NOTE: the pin corrects the scroll in a ResizeObserver callback, one frame after the card grows, so a
  // read straight after the last answer lands can see the uncorrected position (4 px here): poll.
  await expect
    .poll(async () => Math.abs((await heatmap.evaluate((e) => e.getBoundingClientRect().top)) - before), {
      timeout: 5_000,
    })
    .toBeLessThanOrEqual(2);

  // On a phone the legend (with the reference's label) stays inside the chart's box.
  await page.setViewportSize({ width: 390, height: 844 });
  const frame = page.locator('section.chart-frame[aria-label="Patching heatmap"]');
  await frame.scrollIntoViewIfNeeded();
  await expect
    .poll(async () => {
      const f = (await frame.boundingBox())!;
      const l = (await page.getByTestId('heatmap-legend').boundingBox())!;
      return l.x >= f.x && l.x + l.width <= f.x + f.width;
    })
    .toBe(true);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(1);

  // Residual rows are keyed, and the residual's own full-prefix patch (every site at the prefix) is the
  // reference. NOTE: not the K/V one: its layers still project base's stream with finetuned weights.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByLabel('heatmap component').selectOption('resid');
  await page.getByTestId('run-sweep').click();
  await expect(page.getByTestId('run-sweep')).toBeVisible({ timeout: 200_000 });
  await expect(heatmap.locator('text.row-key')).toHaveText(/rows: 0 = embeddings … out = after layer \d+/);
  await expect(page.getByTestId('heatmap-legend')).toHaveAttribute('data-domain', '-1,1');
  const residRef = Number(await ref.getAttribute('data-value'));
  expect(residRef).toBeGreaterThan(0.3);
  expect(Number(await page.getByTestId('per-layer-reading').getAttribute('data-full'))).toBeCloseTo(
    residRef,
    3,
  );
  await expect(page.getByTestId('per-layer-reading')).toContainText('Strongest layer:');
  await screenshot(page, info, 'ui-heatmap-scale');
  expect(errors()).toEqual([]);
});
