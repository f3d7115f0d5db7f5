// Each Teach lesson's "On this screen" reads the numbers it sits beside (issue 15): lesson 2 follows both
// perturbed cards' trial tallies and their direction, whichever way they fall; lesson 3 quotes the
// cards' first-token restoration and the heatmap's full-prefix patch once the sweep ran; lesson 4 says
// what the TReFT cards' verdict chips say.
import { test, expect, type Locator, type Page } from '@playwright/test';
import { screenshot, watchConsole } from './helpers';

// NOTE: UI text over engine paths ui-lab.spec.ts covers on both projects: wasm only.
test.beforeEach(({ browserName: _b }, info) => {
  test.skip(info.project.name !== 'wasm', 'UI flow: wasm project only');
});

const card = (page: Page, id: string): Locator =>
  page.locator(`[data-testid="condition-card"][data-condition-id="${id}"]`);

async function allDone(page: Page): Promise<void> {
  await expect(page.getByTestId('answer').first()).toBeVisible({ timeout: 120_000 });
  for (const answer of await page.getByTestId('answer').all())
    await expect(answer).toHaveAttribute('data-done', 'true', { timeout: 180_000 });
}

test('the lessons read the trial tallies, restorations and verdicts on screen', async ({ page }, info) => {
  test.setTimeout(420_000);
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);

  // Lesson 2: both tallies, and the direction they point in.
  await page.getByTestId('teach-perturb').click();
  await expect(card(page, 'finetuned-perturbed-query')).toBeVisible();
  await allDone(page);
  const reading = page.getByTestId('teach-reading');
  await expect(reading).toHaveAttribute('data-ready', 'true');
  const good = async (id: string) =>
    Number(await card(page, id).getByTestId('trial-tally').getAttribute('data-good'));
  const p = await good('finetuned-perturbed-prefix');
  const q = await good('finetuned-perturbed-query');
  await expect(reading).toContainText(`The prefix perturbation takes the “gamble” out in ${p} of 10 trials`);
  await expect(reading).toContainText(`the query perturbation takes the “gamble” out in ${q} of 10 trials`);
  await expect(reading).toContainText(
    p > q ? 'the paper’s direction' : p === q ? 'do no better than the query trials' : 'the opposite of',
  );
  if (p < 5) await expect(reading).toContainText('Most prefix trials still say “gamble”');
  await screenshot(page, info, 'ui-teach-reading-perturb');

  // Lesson 3: the cards' restorations, then the heatmap's full-prefix patch.
  await page.getByTestId('teach-patch').click();
  await expect(card(page, 'finetuned-kv-patched-query-control')).toBeVisible();
  await allDone(page);
  for (const id of ['finetuned-kv-patched-prefix', 'finetuned-kv-patched-query-control']) {
    const r = await card(page, id).getByTestId('metric-restoration').textContent();
    await expect(reading).toContainText(`(first-token restoration ${r})`);
  }
  const perLayer = page.getByTestId('per-layer-reading');
  await expect(perLayer).toBeVisible({ timeout: 240_000 });
  const full = Number(await perLayer.getAttribute('data-full')).toFixed(2);
  await expect(reading).toContainText(`of the full prefix patch’s ${full}`);
  await expect(reading).not.toContainText('appear here once its sweep');

  // Lesson 4: the TReFT cards' chips, in words.
  await page.getByTestId('teach-treft').click();
  await expect(card(page, 'treft')).toBeVisible();
  await allDone(page);
  for (const [id, who] of [
    ['treft', 'The TReFT finetune'],
    ['finetuned', 'The plain finetune'],
  ] as const) {
    const v = await card(page, id).getByTestId('verdict').getAttribute('data-verdict');
    await expect(reading).toContainText(`${who} ${v === 'misaligned' ? 'says' : 'has no'} “gamble”`);
  }
  expect(errors()).toEqual([]);
});
