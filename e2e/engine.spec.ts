// The engine in the browser: the fixture model on WebGPU (SwiftShader here) and on WASM, each against the
// TypeScript reference, and against each other.
import { test, expect } from '@playwright/test';
import { expectedBackend, screenshot, watchConsole } from './helpers';

interface Check {
  requested: string;
  used: string | null;
  error?: string;
  maxRelError: number | null;
}

test('engine matches the reference on every backend the browser has', async ({ page }, info) => {
  const errors = watchConsole(page);
  await page.goto('/check.html');
  const out = page.getByTestId('selfcheck');
  await expect(out).toHaveAttribute('data-state', 'done', { timeout: 180_000 });
  const result = JSON.parse((await out.textContent()) ?? '{}') as {
    checks: Check[];
    crossBackend: number | null;
  };
  const wasm = result.checks.find((c) => c.requested === 'wasm')!;
  expect(wasm.error).toBeUndefined();
  expect(wasm.used).toBe('wasm');
  expect(wasm.maxRelError).toBeLessThan(1e-4);
  const gpu = result.checks.find((c) => c.requested === 'webgpu')!;
  if (expectedBackend(info) === 'webgpu') {
    expect(gpu.error).toBeUndefined();
    expect(gpu.used).toContain('webgpu');
    expect(gpu.used).toContain('swiftshader');
    expect(gpu.maxRelError).toBeLessThan(1e-4);
    expect(result.crossBackend).toBeLessThan(1e-4);
  } else {
    // WebGPU disabled: the request fails with a reason instead of silently falling back
    expect(gpu.used).toBeNull();
    expect(gpu.error).toBeTruthy();
  }
  await screenshot(page, info, 'engine-selfcheck');
  expect(errors()).toEqual([]);
});
