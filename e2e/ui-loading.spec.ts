// Loading feedback inside the cards (issue 15): while the demo loads, every condition card names the
// step in flight (engine start, model i of n with the weights' bytes, graph, session) instead of "not
// run" / "No answer yet", and the step goes away once the answer is there. The steps can be brief, so
// a MutationObserver installed before the page's scripts records every stage a card showed.
import { test, expect } from '@playwright/test';
import { screenshot, watchConsole } from './helpers';

test.beforeEach(({ browserName: _b }, info) => {
  test.skip(info.project.name !== 'wasm', 'UI flow: wasm project only');
});

test('the cards show the load steps, then their answers', async ({ page }, info) => {
  const errors = watchConsole(page);
  await page.addInitScript(() => {
    const seen: { stage: string; text: string; cards: number; t: number }[] = [];
    (window as unknown as { __loadSteps: typeof seen }).__loadSteps = seen;
    const record = () => {
      const els = document.querySelectorAll('[data-testid="card-loading"]');
      if (els.length === 0) return;
      const stage = els[0].getAttribute('data-stage') ?? '';
      const text = els[0].textContent ?? '';
      const last = seen[seen.length - 1];
      if (!last || last.text !== text)
        seen.push({ stage, text, cards: els.length, t: Math.round(performance.now()) });
    };
    new MutationObserver(record).observe(document, {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
    });
  });
  await page.goto('/');
  const cards = page.getByTestId('condition-card');
  await expect(cards.first()).toBeVisible();
  const n = await cards.count();
  // the first screen: every card loading, none saying "not run"
  await expect(page.getByTestId('card-loading').first()).toBeVisible({ timeout: 30_000 });
  await screenshot(page, info, 'loading-cards');
  for (const answer of await page.getByTestId('answer').all())
    await expect(answer).toHaveAttribute('data-done', 'true', { timeout: 180_000 });
  await expect(page.getByTestId('card-loading')).toHaveCount(0);

  const steps = await page.evaluate(
    () =>
      (window as unknown as { __loadSteps: { stage: string; text: string; cards: number; t: number }[] })
        .__loadSteps,
  );
  const stages = steps.map((s) => s.stage);
  const seen = JSON.stringify(steps.map((s) => s.text));
  // for the report: when each stage began (ms since navigation)
  console.log(
    JSON.stringify(steps.filter((s, i) => steps[i - 1]?.stage !== s.stage).map((s) => [s.t, s.text])),
  );
  // every step was shown on every card
  expect(steps.every((s) => s.cards === n)).toBe(true);
  expect(stages[0]).toBe('engine');
  for (const stage of ['parse', 'graph', 'session'])
    expect(stages, `stages seen: ${stages.join(', ')}`).toContain(stage);
  // the demo's base and full finetune: two loads, the weights read in bytes
  const parse = steps.filter((s) => s.stage === 'parse');
  expect(
    parse.some((s) => /^Model 1 of [12] \(\w+\): reading weights · [\d.]+ (KiB|MiB)/.test(s.text)),
    seen,
  ).toBe(true);
  expect(steps.some((s) => s.stage === 'session' && s.text.includes('ONNX Runtime'))).toBe(true);
  await expect(page.getByTestId('card-status').filter({ hasText: 'not run' })).toHaveCount(0);
  expect(errors()).toEqual([]);
});
