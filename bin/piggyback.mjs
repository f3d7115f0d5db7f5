#!/usr/bin/env node
// `piggyback` CLI launcher: runs the TypeScript CLI (src/cli/main.ts) through tsx, so the CLI and the
// browser share one source of truth without a separate build step.
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';

register();
const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const mod = await import(main);
process.exitCode = await mod.main(process.argv.slice(2));
