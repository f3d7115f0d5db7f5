// `npm test`: type check, lint, format check, unit tests, production build, e2e — in that order,
// stopping at the first failure with a non-zero exit.
import { spawnSync } from 'node:child_process';

const steps = [
  ['type check', 'npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']],
  ['lint', 'npx', ['eslint', '.', '--max-warnings', '0']],
  ['format check', 'npx', ['prettier', '--check', '.']],
  ['unit tests', 'npx', ['vitest', 'run']],
  ['python tests', 'node', ['scripts/python-tests.mjs']],
  ['production build', 'npx', ['vite', 'build']],
  ['e2e', 'node', ['scripts/e2e.mjs']],
];

const started = Date.now();
for (const [name, cmd, args] of steps) {
  const t0 = Date.now();
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (r.status !== 0) {
    console.error(`\n✗ ${name} failed (exit ${r.status ?? r.signal}) after ${secs}s`);
    process.exit(r.status || 1);
  }
  console.log(`✓ ${name} (${secs}s)`);
}
console.log(`\nAll steps passed in ${((Date.now() - started) / 1000).toFixed(0)}s`);
