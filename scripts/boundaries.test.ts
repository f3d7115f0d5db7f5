// The dependency rule of docs/architecture.md is kept by ESLint (`no-restricted-imports` zones in
// eslint.config.js). This test lints one-line files placed in each folder with the project's own config,
// so a zone that stops firing (a typo in a glob, a block that overrides another) fails here, not
// silently. It must never write files: ESLint lints the text under a virtual path.
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: new URL('..', import.meta.url).pathname });

async function restricted(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result.messages
    .filter((m) => m.ruleId?.startsWith('no-restricted-'))
    .map((m) => `${m.ruleId}: ${m.message}`);
}

// [file, import that crosses the rule]
const crossings: [string, string][] = [
  ['src/ui/components/X.tsx', "import { EngineModel } from '../../engine/model';"],
  ['src/ui/X.ts', "import { openHubSource } from '../hub/hub-files';"],
  ['src/ui/X.ts', "import * as ort from 'onnxruntime-web';"],
  ['src/engine/X.ts', "import { Lab } from '../lab/run/lab';"],
  ['src/engine/graph/X.ts', "import { request } from '../../worker/client';"],
  ['src/engine/X.ts', "import { x } from '../hub/hub-api';"],
  ['src/engine/X.ts', "import { x } from '../cli/main';"],
  ['src/hub/X.ts', "import { parseSpec } from '../lab/spec/experiment';"],
  ['src/hub/X.ts', "import { x } from '../ui/store';"],
  ['src/lab/eval/X.ts', "import { x } from '../../worker/protocol';"],
  ['src/lab/X.ts', "import { x } from '../ui/store';"],
  ['src/lab/X.ts', "import { x } from '../cli/main';"],
  ['src/lab/run/X.ts', "import * as ort from 'onnxruntime-node';"],
  ['src/lab/run/X.ts', "import { urlSource } from '../../hub/url-files';"],
  ['src/lab/X.ts', 'export const get = () => fetch("https://example.org");'],
  ['src/lab/X.ts', 'export const get = () => globalThis.fetch("https://example.org");'],
  ['src/worker/X.ts', "import { x } from '../ui/store';"],
  ['src/cli/X.ts', "import { x } from '../worker/client';"],
  ['src/common/X.ts', "import { x } from '../engine/errors';"],
  ['src/engine/X.ts', "import { readFile } from 'node:fs/promises';"],
  ['src/hub/X.ts', "import { readFile } from 'node:fs/promises';"],
  ['src/lab/X.ts', "import { readFile } from 'node:fs/promises';"],
  ['src/worker/X.ts', "import { readFile } from 'node:fs/promises';"],
  ['src/main2.tsx', "import { readFile } from 'node:fs/promises';"],
];

// [file, import the rule allows]
const allowed: [string, string][] = [
  ['src/ui/X.ts', "import { parseSpec } from '../lab/spec/experiment';"],
  ['src/ui/X.ts', "import { WorkerClient } from '../worker/client';"],
  ['src/ui/X.ts', "import { EngineQueue } from './engine-queue';"],
  ['src/lab/run/X.ts', "import { EngineModel } from '../../engine/model';"],
  ['src/hub/X.ts', "import { EngineError } from '../engine/errors';"],
  ['src/worker/X.ts', "import { openHubSource } from '../hub/hub-files';"],
  ['src/cli/X.ts', "import { readFile } from 'node:fs/promises';"],
  ['src/cli/X.ts', "import { Lab } from '../lab/run/lab';"],
  ['src/hub/x-node.ts', "import { readFile } from 'node:fs/promises';"],
  ['src/lab/run/X.test.ts', "import { folderSource } from '../../hub/folder-files-node';"],
];

describe('dependency rule (eslint zones)', () => {
  it.each(crossings)('%s: refuses %s', async (file, code) => {
    expect(await restricted(file, code)).not.toEqual([]);
  });
  it.each(allowed)('%s: allows %s', async (file, code) => {
    expect(await restricted(file, code)).toEqual([]);
  });
});
