// The engine in the browser: the fixture model on WebGPU (SwiftShader here) and on WASM, each against the
// TypeScript reference, and against each other; then in q4 (MatMulNBits, GatherBlockQuantized) against
// the reference on the dequantized weights.
import { test, expect } from '@playwright/test';
import { expectedBackend, screenshot, watchConsole } from './helpers';

interface Check {
  model: string;
  requested: string;
  dtype: 'fp32' | 'q4';
  used: string | null;
  error?: string;
  maxRelError: number | null;
}

test('engine matches the reference on every backend the browser has', async ({ page }, info) => {
  const errors = watchConsole(page);
  await page.goto('/check.html');
  const out = page.getByTestId('selfcheck');
  await expect(out).toHaveAttribute('data-state', 'done', { timeout: 180_000 });
  // the page's one-line verdict agrees with the numbers checked below
  await expect(page.getByTestId('selfcheck-verdict')).toHaveAttribute('data-verdict', 'pass');
  await expect(page.getByTestId('selfcheck-verdict')).toContainText('PASS');
  const result = JSON.parse((await out.textContent()) ?? '{}') as {
    checks: Check[];
    crossBackend: number | null;
  };
  const find = (requested: string, dtype: Check['dtype']) =>
    result.checks.find((c) => c.requested === requested && c.dtype === dtype)!;
  const wasm = find('wasm', 'fp32');
  expect(wasm.error).toBeUndefined();
  expect(wasm.used).toBe('wasm');
  expect(wasm.maxRelError).toBeLessThan(1e-4);
  const wasmQ4 = find('wasm', 'q4');
  expect(wasmQ4.error).toBeUndefined();
  expect(wasmQ4.used).toBe('wasm');
  expect(wasmQ4.maxRelError).toBeLessThan(1e-4);
  const gpu = find('webgpu', 'fp32');
  const gpuQ4 = find('webgpu', 'q4');
  if (expectedBackend(info) === 'webgpu') {
    expect(gpu.error).toBeUndefined();
    expect(gpu.used).toContain('webgpu');
    expect(gpu.used).toContain('swiftshader');
    expect(gpu.maxRelError).toBeLessThan(1e-4);
    expect(result.crossBackend).toBeLessThan(1e-4);
    expect(gpuQ4.error).toBeUndefined();
    expect(gpuQ4.used).toContain('webgpu');
    expect(gpuQ4.maxRelError).toBeLessThan(1e-4);
  } else {
    // WebGPU disabled: the request fails with a reason instead of silently falling back
    expect(gpu.used).toBeNull();
    expect(gpu.error).toBeTruthy();
    expect(gpuQ4.used).toBeNull();
  }
  // the Gemma fixtures (sliding windows, soft-caps, GeGLU, √hidden; tiny-gemma3 with its LoRA): every
  // backend the browser has, fp32 and q4, against the reference
  for (const name of ['tiny-gemma3', 'tiny-gemma2']) {
    const gemma = result.checks.filter((c) => c.model.endsWith(`/fixtures/${name}`));
    expect(gemma.length, name).toBe(4);
    for (const c of gemma) {
      const label = `${name} ${c.requested} ${c.dtype}`;
      if (c.requested === 'webgpu' && expectedBackend(info) !== 'webgpu') {
        expect(c.used, label).toBeNull();
        continue;
      }
      expect(c.error, label).toBeUndefined();
      expect(c.used, label).toContain(c.requested);
      expect(c.maxRelError, label).toBeLessThan(1e-4);
    }
  }
  await screenshot(page, info, 'engine-selfcheck');
  expect(errors()).toEqual([]);
});
