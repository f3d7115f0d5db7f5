// Runs the browser tests: ensures Debian's Chromium, then Playwright against `vite preview` of dist/.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';

execSync('node scripts/ensure-chromium.mjs', { stdio: 'inherit' });
if (!existsSync('dist/index.html')) {
  console.log('dist/ is missing; building first');
  execSync('npx vite build', { stdio: 'inherit' });
}
const extra = process.argv.slice(2).join(' ');
execSync(`npx playwright test ${extra}`, { stdio: 'inherit' });
