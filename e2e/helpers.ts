// Shared e2e helpers: console-error capture, the expected backend per project, screenshots.
import type { Page, TestInfo } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';

export const SCREENSHOT_DIR = 'e2e-screenshots';

/** Collects console errors and page errors; call `errors()` at the end of a test. */
export function watchConsole(page: Page): () => string[] {
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  page.on('pageerror', (err) => errors.push(err.message));
  return () => errors;
}

export function expectedBackend(info: TestInfo): 'webgpu' | 'wasm' {
  return info.project.name === 'webgpu' ? 'webgpu' : 'wasm';
}

export async function screenshot(page: Page, info: TestInfo, name: string): Promise<string> {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}-${info.project.name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
