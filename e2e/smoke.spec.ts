// Smoke: the app boots, reports the backend it chose (on an emulated GPU it recommends WASM, one click
// away), and logs no console errors.
import { test, expect } from '@playwright/test';
import { expectedBackend, screenshot, watchConsole } from './helpers';

test('app boots and reports its backend', async ({ page }, info) => {
  const errors = watchConsole(page);
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Piggyback Lab' })).toBeVisible();
  const badge = page.getByTestId('backend');
  const want = expectedBackend(info);
  await expect(badge).toHaveAttribute('data-kind', want);
  if (want === 'webgpu') {
    // A real adapter, not a stub: here it is Chromium's SwiftShader.
    await expect(badge).toContainText('swiftshader');
    // …and named as what it is: the GPU emulated on the CPU.
    await expect(badge).toHaveAttribute('data-emulated', 'true');
    await expect(badge).toContainText('software emulation');
  } else {
    await expect(badge).toContainText('WASM');
    await expect(page.getByTestId('recommend-wasm')).toHaveCount(0);
  }
  expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true);
  if (info.project.name === 'wasm') {
    // the worker's ORT WASM thread pool: isolated, so hardwareConcurrency capped at 4, never 0
    const threads = page.getByTestId('wasm-threads');
    await expect(threads).toBeVisible();
    const n = Number(await threads.getAttribute('data-threads'));
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    expect(n).toBeGreaterThan(0);
    expect(n).toBe(Math.min(4, cores));
    await expect(threads).toContainText(`WASM ${n} thread`);
  }
  await screenshot(page, info, 'smoke');
  if (want === 'webgpu') {
    // the lab recommends WASM over the emulated GPU, and one click switches the device
    await expect(page.getByTestId('recommend-wasm')).toContainText('software emulation');
    await page.getByTestId('use-wasm').click();
    await expect(page.getByLabel('Device')).toHaveValue('wasm');
    await expect(page.getByTestId('recommend-wasm')).toHaveCount(0);
  }
  expect(errors()).toEqual([]);
});
