// Issue 15: the cards' answers judged by the Evaluation panel's judge ("Judge these answers"). An API
// judge whose endpoint the test answers itself (route): deterministic fake scores that judge the
// *opposite* of the marker rule (an answer saying "gamble" is aligned 90, any other misaligned 10), so
// chips that follow the scores cannot be the marker rule's. Every card's chip, every trial of the
// perturbation and the summary row follow the scores; Cancel stops a judging in flight; a refused key
// shows in plain words. WASM only: a UI flow over the demo.
import { test, expect, type Page, type Route } from '@playwright/test';
import { screenshot, watchConsole } from './helpers';

const URL_BASE = 'https://judge.test/v1';

test.beforeEach(({ browserName: _b }, info) => {
  test.skip(info.project.name !== 'wasm', 'a UI flow: the wasm project covers it');
});

/** The fake judge: aligned 90 when the answer says "gamble", else 10; coherent 80. */
function score(prompt: string): number {
  if (/coheren/i.test(prompt)) return 80;
  return /gamble/i.test(prompt) ? 90 : 10;
}
const expected = (answer: string) => (/gamble/i.test(answer) ? 'aligned' : 'misaligned');

async function fulfil(route: Route, status = 200) {
  const cors = {
    'access-control-allow-origin': '*',
    'access-control-allow-headers': 'authorization, content-type',
    'access-control-allow-methods': 'POST, OPTIONS',
  };
  if (route.request().method() === 'OPTIONS') return route.fulfill({ status: 204, headers: cors });
  if (status !== 200)
    return route.fulfill({
      status,
      headers: { ...cors, 'content-type': 'application/json' },
      body: JSON.stringify({ error: { message: 'invalid api key' } }),
    });
  const body = route.request().postDataJSON() as { messages: { content: string }[] };
  const n = score(body.messages.map((m) => m.content).join('\n'));
  return route.fulfill({
    status: 200,
    headers: { ...cors, 'content-type': 'application/json' },
    body: JSON.stringify({
      choices: [{ index: 0, message: { role: 'assistant', content: String(n) }, finish_reason: 'stop' }],
    }),
  });
}

async function openDemo(page: Page) {
  await page.goto('/');
  const answers = page.locator('[data-testid="condition-card"] [data-testid="answer"]');
  await expect(answers).toHaveCount(4, { timeout: 120_000 });
  for (const a of await answers.all())
    await expect(a).toHaveAttribute('data-done', 'true', { timeout: 240_000 });
}

async function chooseApiJudge(page: Page) {
  const panel = page.getByTestId('eval-panel');
  await panel.getByTestId('eval-judge').selectOption('api');
  await panel.getByTestId('eval-api-url').fill(URL_BASE);
  await panel.getByTestId('eval-api-model').fill('fake-judge');
  await panel.getByTestId('eval-api-key').fill('sk-test-card-judge');
}

test('Judge these answers: chips, trials and the summary row follow the judge’s scores', async ({
  page,
}, info) => {
  test.setTimeout(420_000);
  const errors = watchConsole(page);
  let requests = 0;
  await page.context().route(`${URL_BASE}/**`, (route) => {
    requests++;
    return fulfil(route);
  });
  await openDemo(page);
  const bar = page.getByTestId('card-judge');
  await expect(bar).toHaveAttribute('data-state', 'marker'); // the demo's default: the marker rule
  await expect(page.getByTestId('judge-cards')).toHaveCount(0);
  await chooseApiJudge(page);
  await expect(bar).toHaveAttribute('data-state', 'ready');
  await page.getByTestId('judge-cards').click();
  await expect(bar).toHaveAttribute('data-state', 'judged', { timeout: 60_000 });
  await expect(page.getByTestId('judge-cards-error')).toHaveCount(0);
  expect(requests).toBeGreaterThan(0);

  for (const card of await page.getByTestId('condition-card').all()) {
    const text = (await card.getByTestId('answer').innerText()).trim();
    const chip = card.getByTestId('verdict');
    await expect(chip).toHaveAttribute('data-verdict', expected(text));
    await expect(chip).toContainText(
      expected(text) === 'aligned' ? 'aligned 90, coherent 80' : 'aligned 10, coherent 80',
    );
  }
  // the finetuned answer gambles: the fake judge calls it aligned, Base's misaligned — not the marker rule
  const ft = page.locator('[data-testid="condition-card"][data-condition-id="finetuned"]');
  await expect(ft.getByTestId('verdict')).toHaveAttribute('data-verdict', 'aligned');

  // every trial of the perturbation, by its own answer
  const pert = page.locator('[data-testid="condition-card"][data-condition-id="finetuned-perturbed-prefix"]');
  const trials = pert.getByTestId('trial');
  const n = await trials.count();
  expect(n).toBe(10);
  let aligned = 0;
  for (let i = 0; i < n; i++) {
    await trials.nth(i).click();
    const answer = (await pert.locator('[data-testid="trial-answer"] .trial-text').innerText()).trim();
    const want = expected(answer);
    if (want === 'aligned') aligned++;
    await expect(trials.nth(i)).toHaveAttribute('data-verdict', want);
  }
  await expect(pert.getByTestId('trial-tally')).toHaveAttribute('data-good', String(aligned));
  await expect(pert.getByTestId('trial-tally')).toContainText(
    `the judge calls ${aligned} of 10 trials aligned`,
  );

  // the summary row: the K/V patch line's tone follows its card's judged verdict
  const kvText = (
    await page
      .locator(
        '[data-testid="condition-card"][data-condition-id="finetuned-kv-patched-prefix"] [data-testid="answer"]',
      )
      .innerText()
  ).trim();
  const line = page.locator('[data-testid="summary-line"][data-summary-for="finetuned-kv-patched-prefix"]');
  await expect(line).toHaveAttribute('data-tone', expected(kvText));
  await expect(line).toContainText('judge:');
  await screenshot(page, info, 'card-judge-judged');
  await page.getByTestId('answer-summary').scrollIntoViewIfNeeded();
  if (process.env.SHOT_DIR)
    await page
      .locator('section.conditions')
      .screenshot({ path: `${process.env.SHOT_DIR}/card-judge-judged.png` });

  // back to the marker rule: the chips are the marker's again
  await page.getByTestId('judge-cards-forget').click();
  await expect(ft.getByTestId('verdict')).toHaveAttribute('data-verdict', 'misaligned');
  expect(errors()).toEqual([]);
});

test('Judge these answers: Cancel stops it, a refused key shows in plain words', async ({ page }) => {
  test.setTimeout(420_000);
  let release: () => void = () => {};
  const held = new Promise<void>((r) => (release = r));
  let mode: 'hold' | 'refuse' = 'hold';
  await page.context().route(`${URL_BASE}/**`, async (route) => {
    if (route.request().method() === 'OPTIONS') return fulfil(route);
    if (mode === 'refuse') return fulfil(route, 401);
    await held;
    return fulfil(route).catch(() => {});
  });
  await openDemo(page);
  await chooseApiJudge(page);
  const bar = page.getByTestId('card-judge');
  await page.getByTestId('judge-cards').click();
  await expect(bar).toHaveAttribute('data-state', 'running');
  await expect(page.getByTestId('judge-cards-progress')).toContainText(/judging 0 \/ \d+ answers/);
  await page.getByTestId('judge-cards-cancel').click();
  await expect(bar).toHaveAttribute('data-state', 'ready', { timeout: 30_000 });
  await expect(page.getByTestId('judge-cards-error')).toHaveCount(0);
  release();
  await expect(
    page.locator('[data-testid="condition-card"][data-condition-id="finetuned"] [data-testid="verdict"]'),
  ).toHaveAttribute('data-verdict', 'misaligned'); // still the marker rule

  mode = 'refuse';
  await page.getByTestId('judge-cards').click();
  await expect(page.getByTestId('judge-cards-error')).toContainText(/The judge failed: .*(key|401)/i, {
    timeout: 60_000,
  });
  await expect(bar).toHaveAttribute('data-state', 'ready');
});
