import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';

// The dependency rule (docs/architecture.md "Who may import whom"), kept by the linter: each folder of
// src/ may import only the layers below it. A relative import is matched by the folder names in its
// path, which is exact here because no folder of src/ reuses a layer's name inside another layer.
const layer = (name) => ({ regex: `(^|/)(\\.\\./)+${name}(/|$)` });
const forbid = (names, why) => names.map((n) => ({ ...layer(n), message: `${why} (docs/architecture.md)` }));
const ort = [{ regex: '^onnxruntime-(web|node)', message: 'only src/engine talks to onnxruntime' }];
const nodeApis = [
  { regex: '^node:', message: 'browser code never imports Node APIs (name the file *-node.ts)' },
];
const zones = [
  {
    files: ['src/common/**'],
    patterns: forbid(
      ['engine', 'hub', 'lab', 'worker', 'ui', 'cli'],
      'common/ imports nothing of the project',
    ),
  },
  {
    files: ['src/engine/**'],
    patterns: forbid(
      ['lab', 'worker', 'ui', 'cli', 'hub'],
      'the engine never imports the lab, hub, worker, UI or CLI',
    ),
  },
  {
    files: ['src/hub/**'],
    patterns: [
      ...forbid(['lab', 'worker', 'ui', 'cli'], 'hub/ knows files and HTTP, not the lab, worker, UI or CLI'),
      ...ort,
    ],
  },
  {
    files: ['src/lab/**'],
    patterns: [
      ...forbid(
        ['worker', 'ui', 'cli', 'hub'],
        'lab/ is pure: effects (HTTP, workers, UI) stay at the edges',
      ),
      ...ort,
    ],
  },
  {
    files: ['src/ui/**'],
    patterns: [
      ...forbid(
        ['engine', 'hub', 'cli'],
        'the UI reaches models only through the worker (src/worker/client.ts)',
      ),
      ...ort,
    ],
  },
  { files: ['src/worker/**'], patterns: forbid(['ui', 'cli'], 'the worker never imports the UI or CLI') },
  {
    files: ['src/cli/**'],
    patterns: forbid(['ui', 'worker'], 'the CLI never imports the browser UI or worker'),
  },
];
// Browser code: everything in src/ but the CLI, Node-only modules (*-node.ts) and tests.
const nodeOnly = [
  'src/cli/**',
  'src/**/*-node.ts',
  'src/**/*.test.ts',
  'src/**/*.test.tsx',
  'src/engine/test-fixtures.ts',
];
const tests = [
  'src/**/*.test.ts',
  'src/**/*.test.tsx',
  'src/**/*.testdata.ts',
  'src/engine/test-fixtures.ts',
];

export default tseslint.config(
  { ignores: ['dist', 'node_modules', 'fixtures', 'public', 'organism', 'test-results', 'e2e-screenshots'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,tsx,js,mjs}'],
    languageOptions: { globals: { ...globals.browser, ...globals.node } },
    plugins: { 'react-hooks': reactHooks },
    rules: {
      ...reactHooks.configs.recommended.rules,
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  // Each zone twice: browser files of the zone also may not import node:*, its Node-only files may.
  ...zones.flatMap(({ files, patterns }) => [
    {
      files,
      ignores: [...tests, ...nodeOnly],
      rules: { 'no-restricted-imports': ['error', { patterns: [...patterns, ...nodeApis] }] },
    },
    {
      files: files.map((f) => f.replace('**', '**/*-node.ts')),
      ignores: tests,
      rules: { 'no-restricted-imports': ['error', { patterns }] },
    },
  ]),
  // src/cli is Node-only as a whole.
  {
    files: ['src/cli/**'],
    ignores: tests,
    rules: { 'no-restricted-imports': ['error', { patterns: zones.at(-1).patterns }] },
  },
  // Browser code outside the zones (entry points such as src/main.tsx, src/check.ts).
  { files: ['src/*.{ts,tsx}'], rules: { 'no-restricted-imports': ['error', { patterns: nodeApis }] } },
  {
    files: ['src/lab/**'],
    ignores: tests,
    rules: {
      'no-restricted-globals': [
        'error',
        { name: 'fetch', message: 'lab/ is pure: HTTP lives in src/hub/ (inject a transport)' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'globalThis', property: 'fetch', message: 'lab/ is pure: HTTP lives in src/hub/' },
      ],
    },
  },
);
