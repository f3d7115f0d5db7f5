// The lab on a phone (390×844, issue 15): the token editor's buttons stay inside the editor's box, the
// patch controls open next to the card being patched (not a page's length below it), no element passes
// the viewport's right edge, no SVG text is cut off at its chart's edge (chart legends wrap), and the
// heatmap's legend stays inside its box once the sweep ran.
import { test, expect, type Page } from '@playwright/test';
import { screenshot, watchConsole } from './helpers';

// NOTE: a layout check over engine paths ui-lab.spec.ts covers on both projects: wasm only.
test.beforeEach(({ browserName: _b }, info) => {
  test.skip(info.project.name !== 'wasm', 'UI layout: wasm project only');
});

async function allDone(page: Page): Promise<void> {
  await expect(page.getByTestId('answer').first()).toBeVisible({ timeout: 120_000 });
  for (const answer of await page.getByTestId('answer').all())
    await expect(answer).toHaveAttribute('data-done', 'true', { timeout: 180_000 });
}

/**
 * Elements that stick out: past the viewport's right edge (outside a horizontal scroller, where content is
 * meant to scroll), or SVG text past its own <svg> (which clips it).
 */
async function sticksOut(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const out: string[] = [];
    const name = (e: Element) =>
      `${e.tagName.toLowerCase()}${e.getAttribute('data-testid') ? `[${e.getAttribute('data-testid')}]` : ''}` +
      `${e.getAttribute('class') ? `.${e.getAttribute('class')!.trim().split(/\s+/).join('.')}` : ''}`;
    const inScroller = (e: Element) => {
      for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
        const o = getComputedStyle(p).overflowX;
        if (o === 'auto' || o === 'scroll') return true;
      }
      return false;
    };
    for (const e of document.querySelectorAll('body *')) {
      const r = e.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || getComputedStyle(e).visibility === 'hidden') continue;
      const where = `${e.parentElement ? name(e.parentElement) + ' > ' : ''}${name(e)} "${(e.textContent ?? '').slice(0, 30)}"`;
      if (r.right > vw + 1 && !inScroller(e))
        out.push(`${where}: right ${Math.round(r.right)} > viewport ${vw}`);
      const svg = e instanceof SVGTextElement ? e.ownerSVGElement : null;
      if (svg) {
        const s = svg.getBoundingClientRect();
        if (r.right > s.right + 1 || r.left < s.left - 1)
          out.push(
            `${where}: ${Math.round(r.left)}…${Math.round(r.right)} outside its svg ${Math.round(s.left)}…${Math.round(s.right)}`,
          );
      }
    }
    return out;
  });
}

test('on a phone the editor, the patch controls, the charts and the heatmap legend stay in their boxes', async ({
  page,
}, info) => {
  test.setTimeout(360_000);
  const errors = watchConsole(page);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('/');
  await allDone(page);
  await expect(page.getByTestId('drift-chart')).toBeVisible({ timeout: 120_000 });
  expect.soft(await sticksOut(page)).toEqual([]);

  // The token editor of a prefix token: every button inside the editor's box.
  await page.getByTestId('token-strip').getByTestId('token').nth(3).click();
  const editor = page.getByTestId('token-editor');
  await expect(editor.locator('.chip-btn').first()).toBeVisible({ timeout: 60_000 });
  const box = (await editor.boundingBox())!;
  for (const b of await editor.locator('button, input').all()) {
    const r = (await b.boundingBox())!;
    expect.soft(r.x, `${await b.textContent()} starts inside the editor`).toBeGreaterThanOrEqual(box.x - 1);
    expect
      .soft(
        r.x + r.width,
        `${(await b.textContent()) || (await b.getAttribute('data-testid'))} ends inside the editor`,
      )
      .toBeLessThanOrEqual(box.x + box.width + 1);
  }
  expect.soft(await sticksOut(page)).toEqual([]);
  await editor.getByLabel('close token editor').click();

  // Patch on a card: its controls open with the card, not a page's length below it (and not before
  // Patch is pressed: the default target's card stays closed; the side panel says where they open).
  await expect(page.getByTestId('card-patch')).toHaveCount(0);
  await expect(page.getByTestId('patch-hint')).toBeVisible();
  const card = page.locator(
    '[data-testid="condition-card"][data-condition-id="finetuned-kv-patched-prefix"]',
  );
  await card.getByRole('button', { name: 'Patch', exact: true }).click();
  const controls = page.getByTestId('patch-controls');
  await expect(controls).toBeVisible();
  await expect(controls).toHaveCount(1);
  const c = (await card.boundingBox())!;
  const p = (await controls.boundingBox())!;
  expect.soft(p.y).toBeGreaterThanOrEqual(c.y);
  expect
    .soft(p.y, 'the patch controls start within the card or right under it')
    .toBeLessThanOrEqual(c.y + c.height + 24);
  // …and they work there: K/V → residual changes the card's description.
  await controls.getByLabel('Residual').check();
  await expect(card.locator('.card-desc').first()).toContainText(/resid/i);
  await controls.getByLabel('K/V').check();
  await expect(card.locator('.card-desc').first()).toContainText(/K\/V/);
  expect.soft(await sticksOut(page)).toEqual([]);
  await screenshot(page, info, 'ui-phone-patch');
  await page.getByTestId('card-patch').getByRole('button', { name: 'close the patch controls' }).click();
  await expect(page.getByTestId('card-patch')).toHaveCount(0);

  // The heatmap's legend stays inside its box; the restoration-by-layer chart's legend wraps.
  await page.getByTestId('run-sweep').click();
  await expect(page.getByTestId('per-layer-reading')).toBeVisible({ timeout: 240_000 });
  const legend = (await page.getByTestId('heatmap-legend').boundingBox())!;
  const frame = (await page.getByTestId('heatmap').locator('xpath=ancestor::section[1]').boundingBox())!;
  expect.soft(legend.x).toBeGreaterThanOrEqual(frame.x);
  expect.soft(legend.x + legend.width).toBeLessThanOrEqual(frame.x + frame.width);
  expect.soft(await sticksOut(page)).toEqual([]);
  await screenshot(page, info, 'ui-phone-heatmap');
  expect(errors()).toEqual([]);
});
