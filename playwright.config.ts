// Playwright runs every browser test twice in Debian's Chromium: once with WebGPU (SwiftShader here)
// and once with WebGPU unavailable (WASM). Never a downloaded browser.
import { defineConfig } from '@playwright/test';
import { CHROMIUM_BASE_ARGS, CHROMIUM_PATH } from './e2e/chromium';

const chromiumPath = CHROMIUM_PATH;
const baseArgs = [...CHROMIUM_BASE_ARGS];
const port = Number(process.env.E2E_PORT ?? 4173);

export default defineConfig({
  testDir: 'e2e',
  testMatch: '**/*.spec.ts',
  outputDir: 'test-results',
  timeout: 240_000,
  expect: { timeout: 60_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    viewport: { width: 1280, height: 800 },
    trace: 'off',
  },
  projects: [
    {
      name: 'webgpu',
      use: {
        launchOptions: { executablePath: chromiumPath, args: [...baseArgs, '--enable-unsafe-webgpu'] },
      },
    },
    {
      name: 'wasm',
      use: {
        launchOptions: { executablePath: chromiumPath, args: [...baseArgs, '--disable-features=WebGPU'] },
      },
    },
  ],
  webServer: {
    command: `npx vite preview --host 127.0.0.1 --port ${port} --strictPort`,
    url: `http://127.0.0.1:${port}/`,
    reuseExistingServer: false,
    timeout: 60_000,
  },
});
