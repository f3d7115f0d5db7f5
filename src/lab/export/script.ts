// An export plan → one self-contained Python script: a header saying what it runs and how, the plan as
// readable JSON data, the shared runtime (python/runtime.py) and the target's interventions
// (python/target_transformers.py: forward hooks on transformers + peft or the local backend;
// python/target_nnsight.py: nnsight tracing, locally or on NDIF with remote=True). The Python sources
// are handed in (`PythonSources`): the CLI reads the files, the UI bundles them with Vite's `?raw`.
// Pure string work: it must never fetch, read files, or put a key, a token or a credential into the
// script (keys come from environment variables when the script runs).

import type { ExportPlan } from './plan';

export const EXPORT_TARGETS = ['transformers', 'nnsight'] as const;
export type ExportTarget = (typeof EXPORT_TARGETS)[number];

/** The Python pieces of src/lab/export/python/ (local_llama.py is not embedded: it is the CI seam). */
export interface PythonSources {
  runtime: string;
  transformers: string;
  nnsight: string;
}

export const PYTHON_FILES: Record<keyof PythonSources, string> = {
  runtime: 'runtime.py',
  transformers: 'target_transformers.py',
  nnsight: 'target_nnsight.py',
};

export interface ScriptOptions {
  /** e.g. 'piggyback-lab 0.1.0' */
  exporter: string;
}

function isScalar(v: unknown): boolean {
  return v === null || typeof v !== 'object';
}

/**
 * JSON for a person to read: objects one key per line, arrays of scalars on one line (a token list
 * stays one line), and nothing but ASCII (every other character, and the apostrophe, as \uXXXX), so
 * the text sits safely inside a Python r'''…''' literal.
 */
export function readableJson(value: unknown): string {
  // NOTE: JSON allows \u escapes anywhere in a string; none of these characters can occur outside one.
  return layout(value, '').replace(
    /[^\x20-\x26\x28-\x7e\n]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function layout(value: unknown, indent: string): string {
  const inner = indent + ' ';
  if (isScalar(value)) return JSON.stringify(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    if (value.every(isScalar)) return `[${value.map((v) => JSON.stringify(v)).join(', ')}]`;
    return `[\n${value.map((v) => inner + layout(v, inner)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return '{}';
  if (entries.every(([, v]) => isScalar(v)) && entries.length <= 6)
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')}}`;
  return `{\n${entries
    .map(([k, v]) => `${inner}${JSON.stringify(k)}: ${layout(v, inner)}`)
    .join(',\n')}\n${indent}}`;
}

function pyString(s: string): string {
  return JSON.stringify(s).replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function sourcesLine(plan: ExportPlan): string[] {
  return plan.weights.flatMap((w) => {
    const label = (s: (typeof w)['source']) =>
      s.kind === 'hub' ? `${s.repo} @ ${s.revision}` : s.kind === 'folder' ? s.path : s.url;
    return [
      `  weights ${label(w.source)}`,
      ...w.adapters.map((a) => `    + PEFT adapter ${label(a.source)} (model "${a.name}")`),
    ];
  });
}

function header(plan: ExportPlan, target: ExportTarget, options: ScriptOptions): string {
  const spec = plan.spec;
  const name = spec.name
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/\\/g, '/')
    .replace(/"""/g, "'''");
  const run = plan.runs[0];
  const conds = run.conditions.map((c) => {
    const what = [
      c.patch
        ? `${c.patch.component === 'kv' ? 'K/V' : 'residual'} patch from ${c.patch.source}, sites ${siteText(c.patch.sites)}, ${c.patch.positions.length} positions`
        : null,
      c.trials ? `random ${c.trials.segment} perturbation, ${c.trials.items.length} trials` : null,
      c.prompt ? 'hand-edited prompt' : null,
      c.dose !== 1 ? `LoRA dose ${c.dose}` : null,
    ].filter(Boolean);
    return `  ${c.id}: ${c.model}${what.length ? ` (${what.join('; ')})` : ''}`;
  });
  const untested =
    target === 'nnsight'
      ? [
          'UNTESTED HERE: the nnsight path (local and NDIF) has never been run by the Piggyback Lab test suite,',
          'which has PyTorch but neither nnsight nor transformers. It is written for nnsight >= 0.5. What is',
          'tested is the transformers target on the local backend: same plan, same checks, same results file.',
        ]
      : [
          "Tested in the Piggyback Lab repo with --backend local (the project's own PyTorch Llama family) on the",
          "embedded toy organism and the tiny fixtures: greedy ids equal the lab's own engine token for token.",
          'UNTESTED HERE: --backend transformers (Hugging Face transformers + peft are not installed in CI).',
        ];
  const usage =
    target === 'nnsight'
      ? [
          '  python3 experiment.py --out results.json              # nnsight on this machine (transformers + peft)',
          '  NDIF_API_KEY=... python3 experiment.py --remote       # on NDIF (models it hosts; LoRA sent as interventions)',
        ]
      : [
          '  python3 experiment.py --out results.json              # transformers + peft (GPU: device_map="auto")',
          '  python3 experiment.py --backend local --local-module src/lab/export/python/local_llama.py --root .',
        ];
  return [
    '#!/usr/bin/env python3',
    '"""' + `Piggyback Lab experiment "${name}" (spec ${plan.specHash}), exported for ${target}.`,
    '',
    `Generated by ${options.exporter} (\`piggyback export\` or the lab's Share panel). The lab resolved`,
    'everything below as data: the rendered prompt and its ids, the prefix / query / postfix ranges, every',
    "perturbation trial (positions and neighbour ranks from the lab's seeded RNG), each patch's component,",
    'sites and positions, the LoRA doses, the generation settings and stop ids, the judge prompts and',
    'thresholds. This script checks that the tokenizer here gives the same ids (and refuses if not), runs',
    'every condition, and writes a results file the lab opens (Share panel: Import results;',
    '`piggyback import`, `piggyback compare`).',
    '',
    'Models:',
    ...sourcesLine(plan),
    `Conditions (prompt: ${run.prompt.tokens.length} tokens, prefix ${run.prompt.segments.prefix.join('..')}):`,
    ...conds,
    ...(plan.runs.length > 1 ? [`Evaluation: ${plan.runs.length - 1} questions (run with --eval).`] : []),
    '',
    'Run:',
    ...usage,
    '  python3 experiment.py --help',
    'Keys only from the environment: PIGGYBACK_JUDGE_KEY or OPENAI_API_KEY (judge), NDIF_API_KEY (NDIF),',
    'HF_TOKEN (gated Hub repos, read by huggingface_hub). None is ever written into this file.',
    '',
    ...untested,
    '"""',
    '',
  ]
    .join('\n')
    .replace(/[^\x20-\x7e\n]/g, '?');
}

function siteText(sites: number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < sites.length;) {
    let j = i;
    while (j + 1 < sites.length && sites[j + 1] === sites[j] + 1) j++;
    runs.push(j > i ? `${sites[i]}-${sites[j]}` : String(sites[i]));
    i = j + 1;
  }
  return runs.join(',');
}

/** The whole script for `target`. */
export function generatePythonScript(
  plan: ExportPlan,
  target: ExportTarget,
  sources: PythonSources,
  options: ScriptOptions,
): string {
  if (!(EXPORT_TARGETS as readonly string[]).includes(target))
    throw new Error(`unknown export target "${String(target)}" (expected ${EXPORT_TARGETS.join(' or ')})`);
  const data = readableJson(plan);
  if (data.includes("'''")) throw new Error('internal: the plan text contains a triple quote');
  return [
    header(plan, target, options),
    `TARGET = ${pyString(target)}`,
    `EXPORTER = ${pyString(options.exporter)}`,
    '',
    '# The experiment as the lab resolved it (src/lab/export/plan.ts: ExportPlan). Edit the spec in the lab',
    '# and export again rather than this data: positions and trials depend on each other.',
    `PLAN_JSON = r'''${data}'''`,
    '',
    sources.runtime.trimEnd(),
    '',
    '',
    (target === 'nnsight' ? sources.nnsight : sources.transformers).trimEnd(),
    '',
    '',
    'if __name__ == "__main__":',
    '    sys.exit(main())',
    '',
  ].join('\n');
}
