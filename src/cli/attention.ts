// `piggyback attention`: the attention mass from the answer positions onto prefix / query / postfix /
// answer per layer (mean over heads) for every condition, and the finetuned − base prefix-mass
// difference per (layer, head) with the strongest head; --json prints the AttentionResult itself.
import type { AttentionResult } from '../lab/spec/results';

export const ATTENTION_USAGE = `  piggyback attention <spec.json | share-url> [--answer-tokens N] [--json]`;

const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '—');

/** The (layer, head) whose prefix mass the finetune moved most, by absolute difference. */
export function strongestHead(r: AttentionResult): { layer: number; head: number; diff: number } | null {
  let best: { layer: number; head: number; diff: number } | null = null;
  r.prefixDiff.forEach((d, i) => {
    if (!best || Math.abs(d) > Math.abs(best.diff))
      best = { layer: r.layers[Math.floor(i / r.heads)], head: i % r.heads, diff: d };
  });
  return best;
}

export function formatAttention(r: AttentionResult): string {
  const R = r.regions.length;
  const lines: string[] = [];
  lines.push(
    `attention mass from ${r.answerTokens === 1 ? 'the first answer position' : `${r.answerTokens} answer positions`}, mean over ${r.heads} heads (${r.kvHeads} KV heads)`,
  );
  for (const c of r.conditions) {
    lines.push(
      '',
      `${c.id} (${c.label})${c.answerText ? ` · answer so far ${JSON.stringify(c.answerText)}` : ''}`,
    );
    if (c.error) {
      lines.push(`  error: ${c.error}`);
      continue;
    }
    lines.push(`  layer  ${r.regions.map((g) => g.padStart(8)).join('')}`);
    r.layers.forEach((l, li) => {
      const cols = r.regions.map((_, g) => {
        let s = 0;
        for (let h = 0; h < r.heads; h++) s += c.mass[(li * r.heads + h) * R + g];
        return f3(s / r.heads).padStart(8);
      });
      lines.push(`  ${String(l).padStart(5)}  ${cols.join('')}`);
    });
  }
  lines.push('', 'prefix mass, finetuned − base, per layer × head:');
  lines.push(`  layer ${Array.from({ length: r.heads }, (_, h) => `h${h}`.padStart(8)).join('')}`);
  r.layers.forEach((l, li) =>
    lines.push(
      `  ${String(l).padStart(5)} ${r.prefixDiff
        .slice(li * r.heads, (li + 1) * r.heads)
        .map((d) => (d >= 0 ? '+' : '') + f3(d))
        .map((t) => t.padStart(8))
        .join('')}`,
    ),
  );
  const s = strongestHead(r);
  if (s) {
    const i = r.layers.indexOf(s.layer) * r.heads + s.head;
    lines.push(
      `strongest: layer ${s.layer} head ${s.head}: base ${f3(r.basePrefixMass[i])} → finetuned ${f3(r.finetunedPrefixMass[i])}`,
    );
  }
  return lines.join('\n') + '\n';
}
