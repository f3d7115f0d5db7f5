// What a first-time user reads on the embedded demo (issue 15): answer-level verdicts on every card and
// in "What the answers say" (the whole answer says "gamble" or not, not a first-token number), honest
// trials (every random-perturbation trial with its own answer; the shown one is labelled the best case,
// and the count says how many really lost the "gamble"), marker words that can be changed or cleared,
// and a heatmap that says which layer (per-row means, the top row marked, residual rows named).
import { test, expect, type Locator, type Page } from '@playwright/test';
import { SCREENSHOT_DIR, screenshot, watchConsole } from './helpers';

// NOTE: these are UI flows over the same engine paths ui-lab.spec.ts covers on both projects; the
// perturbed card now generates all 10 trials' answers, which under SwiftShader's emulated WebGPU costs
// minutes. So they run on the wasm project only.
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

test('cards and the summary judge whole answers, and the perturbed card shows every trial', async ({
  page,
}, info) => {
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);

  // Every card's verdict agrees with its own answer text.
  for (const c of await page.getByTestId('condition-card').all()) {
    const text = ((await c.getByTestId('answer').textContent()) ?? '').toLowerCase();
    await expect(c.getByTestId('verdict')).toHaveAttribute(
      'data-verdict',
      text.includes('gamble') ? 'misaligned' : 'aligned',
    );
  }
  await expect(card(page, 'base').getByTestId('verdict')).toHaveText('no “gamble”');
  await expect(card(page, 'finetuned').getByTestId('verdict')).toHaveText('says “gamble”');
  const headline = page.getByTestId('summary-headline');
  await expect(headline).toContainText('Finetuned says “gamble”, Base does not');
  await expect(headline).toHaveAttribute('data-contrast', 'true');

  // Honest trials: one button per trial, each judged by its own answer; the count matches the buttons.
  const perturbed = card(page, 'finetuned-perturbed-prefix');
  const trials = perturbed.getByTestId('trial');
  await expect(trials).toHaveCount(10);
  const verdicts = await trials.evaluateAll((els) => els.map((e) => e.getAttribute('data-verdict')));
  const good = verdicts.filter((v) => v === 'aligned').length;
  const tally = perturbed.getByTestId('trial-tally');
  await expect(tally).toHaveAttribute('data-n', '10');
  await expect(tally).toHaveAttribute('data-good', String(good));
  await expect(tally).toContainText(`no “gamble” in ${good} of 10 trials`);
  await expect(perturbed.getByTestId('shown-trial')).toContainText('the best case, not a typical trial');
  // The shown answer is the best trial's; on this question most trials still gamble, and the summary
  // line says so rather than repeating the best one.
  const shown = (await perturbed.getByTestId('answer').textContent()) ?? '';
  expect(shown.toLowerCase()).not.toContain('gamble');
  expect(good).toBeLessThan(5);
  await expect(
    page.locator('[data-testid="summary-line"][data-summary-for="finetuned-perturbed-prefix"]'),
  ).toContainText(`in ${good} of 10 trials — most trials leave it`);
  // Each trial button opens that trial's own answer, and its verdict matches the text.
  const bad = verdicts.indexOf('misaligned');
  expect(bad).toBeGreaterThanOrEqual(0);
  await trials.nth(bad).click();
  await expect(trials.nth(bad)).toHaveAttribute('aria-pressed', 'true');
  await expect(perturbed.getByTestId('trial-answer').locator('.trial-text')).toContainText(/gamble/i);
  await expect(perturbed.getByTestId('trial-answer')).toContainText(`trial ${bad + 1} of 10`);
  // …and the tokens it replaced, before → after, one line per edited position
  const changed = Number(
    /(\d+) tokens changed/.exec(await perturbed.getByTestId('trial-answer').innerText())?.[1] ?? NaN,
  );
  expect(changed).toBeGreaterThan(0);
  await expect(perturbed.getByTestId('trial-edits').locator('li')).toHaveCount(changed);
  await expect(perturbed.getByTestId('trial-edits').locator('li').first()).toContainText('→');

  // The patch's line: it takes the gamble out on this question.
  await expect(
    page.locator('[data-testid="summary-line"][data-summary-for="finetuned-kv-patched-prefix"]'),
  ).toHaveAttribute('data-tone', 'aligned');
  await expect(card(page, 'finetuned-kv-patched-prefix').getByTestId('resemblance')).toHaveAttribute(
    'data-like',
    'base',
  );
  await screenshot(page, info, 'ui-first-user-verdicts');

  // Other marker words re-judge the same answers without a run; none compares with Base / Finetuned.
  const markers = page.getByTestId('verdict-markers');
  await markers.fill('book');
  await markers.press('Enter');
  await expect(card(page, 'base').getByTestId('verdict')).toHaveText('says “book”');
  await expect(headline).toContainText('Finetuned does not say “book”');
  await markers.fill('');
  await markers.press('Enter');
  await expect(card(page, 'finetuned-kv-patched-prefix').getByTestId('verdict')).toHaveAttribute(
    'data-verdict',
    'unjudged',
  );
  await expect(card(page, 'finetuned-kv-patched-prefix').getByTestId('verdict')).toHaveText(
    'same answer as Base',
  );
  await expect(headline).toContainText('answer differently');
  // No answer was recomputed for a change of marker words.
  for (const a of await page.getByTestId('answer').all())
    await expect(a).toHaveAttribute('data-done', 'true');
  expect(errors()).toEqual([]);
});

test('the heatmap says which layer: row means beside the grid, the top row marked, residual rows named', async ({
  page,
}, info) => {
  const errors = watchConsole(page);
  await page.goto('/');
  await allDone(page);
  await page.getByTestId('run-sweep').click();
  const heatmap = page.getByTestId('heatmap');
  await expect(page.getByTestId('run-sweep')).toBeVisible({ timeout: 200_000 });
  const reading = page.getByTestId('heatmap-summary');
  await expect(reading).toBeVisible();

  // The row means written beside the grid are the means of the cells' own values.
  const cells = await heatmap
    .locator('rect.cell')
    .evaluateAll((els) =>
      els.map((e) => [Number(e.getAttribute('data-layer')), Number(e.getAttribute('data-value'))]),
    );
  const layers = [...new Set(cells.map(([l]) => l))].sort((a, b) => a - b);
  const means = layers.map((l) => {
    const vs = cells.filter(([x]) => x === l).map(([, v]) => v);
    return vs.reduce((a, b) => a + b, 0) / vs.length;
  });
  const shownMeans = await heatmap.locator('text.row-mean').allTextContents();
  expect(shownMeans).toHaveLength(layers.length);
  // NOTE: cells carry 4 decimals, the column 3: compare to within rounding
  shownMeans.forEach((t, i) => expect(Number(t)).toBeCloseTo(means[i], 2));
  // The reading names the layer with the highest mean, or says none stands out.
  const top = layers[means.indexOf(Math.max(...means))];
  const named = await reading.getAttribute('data-layer');
  if (named === 'none') await expect(reading).toContainText('No single layer stands out');
  else {
    expect(Number(named)).toBe(top);
    await expect(reading).toContainText(`One position at a time, layer ${top} restores the most on average`);
    await expect(heatmap.locator('rect.top-layer')).toHaveCount(1);
  }
  await expect(reading).toContainText('Strongest position:');

  // The per-layer patch runs with the sweep and answers it with every prefix position of a layer at once.
  await expect(page.getByTestId('per-layer-reading')).toContainText(
    /layer \d+ restores the most \(\d\.\d\d: /,
    {
      timeout: 120_000,
    },
  );
  await screenshot(page, info, 'ui-first-user-heatmap');

  // Residual rows: the stream into each layer, and "out" after the last one.
  await page.getByLabel('heatmap component').selectOption('resid');
  await page.getByTestId('run-sweep').click();
  await expect(page.getByTestId('run-sweep')).toBeVisible({ timeout: 200_000 });
  await expect(heatmap.locator('.y-axis text').last()).toHaveText('out');
  await expect(heatmap).toContainText('residual into layer');
  await expect(reading).toContainText('row “out” is the stream after the last layer');
  expect(errors()).toEqual([]);
});

test('on a phone the verdicts and trials fit one column', async ({ page }, info) => {
  const errors = watchConsole(page);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('/');
  await allDone(page);
  await expect(page.getByTestId('answer-summary')).toBeVisible();
  await expect(card(page, 'finetuned-perturbed-prefix').getByTestId('trial')).toHaveCount(10);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(1);
  await page.getByTestId('answer-summary').screenshot({
    path: `${SCREENSHOT_DIR}/ui-first-user-summary-phone-${info.project.name}.png`,
  });
  await screenshot(page, info, 'ui-first-user-phone');
  expect(errors()).toEqual([]);
});
