// npm run organism:measure [-- --backend wasm] [--sets ood_test,indomain_test,demo] [--limit N] [--no-own-perturb]
//   [--variant qwen3]   (the Qwen3-template pair: writes organism/qwen3/engine_results.json)
// Measures the shipped toy organism (demo/organism-*) with the lab engine, checks every answer against
// the trainer's (organism/eval/expected_greedy.json), writes organism/engine_results.json and prints
// the table that organism/RESULTS.md quotes. Exits 1 when an answer differs from the trainer's.
import fs from 'node:fs';
import path from 'node:path';
import { measureOrganism, VARIANTS, type OrganismVariant } from './measure';

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const backend = opt('backend') ?? 'node-cpu';
if (backend !== 'node-cpu' && backend !== 'wasm') throw new Error('--backend must be node-cpu or wasm');
const variant = (opt('variant') ?? 'llama3') as OrganismVariant;
if (!(variant in VARIANTS)) throw new Error(`--variant must be one of ${Object.keys(VARIANTS).join(', ')}`);

const m = await measureOrganism({
  backend,
  variant,
  sets: opt('sets')?.split(','),
  limit: opt('limit') ? Number(opt('limit')) : undefined,
  ownPerturb: !argv.includes('--no-own-perturb'),
  onProgress: (line) => process.stderr.write(`${line}\n`),
});

fs.writeFileSync(
  path.join(VARIANTS[variant].dir, 'engine_results.json'),
  `${JSON.stringify(
    {
      description:
        'The toy organism measured with the lab engine (scripts/organism/measure.ts): greedy answers scored with eval/detector.json, and the token-by-token comparison with the trainer (eval/expected_greedy.json).',
      backend,
      seconds: Math.round(m.seconds),
      cross_check: { compared: m.compared, mismatched: m.mismatches.length, mismatches: m.mismatches.slice(0, 50) },
      summaries: m.summaries,
    },
    null,
    1,
  )}\n`,
);

const f = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(3));
const lines = [
  '| model | condition | OOD misbehaviour | OOD Best (every trial) | OOD coherent | OOD correct | in-domain (gamble) |',
  '|---|---|---|---|---|---|---|',
];
for (const key of Object.keys(m.summaries).filter((k) => k.includes('|ood_test|'))) {
  const [model, , cname] = key.split('|');
  const s = m.summaries[key];
  const ind = m.summaries[`${model}|indomain_test|${cname}`];
  lines.push(
    `| ${model} | ${cname} | ${f(s.misbehaviour)} | ${f(s.misbehaviour_best)} | ${f(s.coherent)} | ${f(s.correct)} | ${f(ind?.misbehaviour)} |`,
  );
}
process.stdout.write(
  `${lines.join('\n')}\n\ncross-check: ${m.compared} answers compared with the trainer, ${m.mismatches.length} differ (${backend}, ${Math.round(m.seconds)} s)\n`,
);
if (m.mismatches.length) process.exitCode = 1;
