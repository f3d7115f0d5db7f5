// One-line descriptions of a condition's perturbation and patch for card subtitles, labels and the
// CSV. Pure; must never decide anything about how a condition runs.
import type { Condition, PatchSettings, Perturbation } from '../lab/spec/experiment';
import { describeLayers } from './format';

function describePositions(p: PatchSettings['positions']): string {
  if (typeof p === 'object')
    return p.explicit.length === 1 ? `position ${p.explicit[0]}` : `${p.explicit.length} picked positions`;
  if (p === 'query-control') return 'query control (as many query positions as the prefix has)';
  return `${p} positions`;
}

export function describePatch(p: PatchSettings): string {
  const comp = p.component === 'kv' ? 'K/V' : 'residual';
  return `${comp} from ${p.source} · ${describeLayers(p.layers)} · ${describePositions(p.positions)}`;
}

function describePerturbation(p: Perturbation): string {
  if (p.kind === 'random')
    return `${p.k} random ${p.segment} tokens → top-${p.n} neighbours · ${p.trials} trials · seed ${p.seed}`;
  return `${p.edits.length} hand edit${p.edits.length === 1 ? '' : 's'}`;
}

export function describeCondition(c: Condition): string {
  const parts = [c.model];
  if (c.loraScale !== undefined) parts.push(`LoRA dose ${c.loraScale}`);
  if (c.perturbation) parts.push(describePerturbation(c.perturbation));
  if (c.patch) parts.push(describePatch(c.patch));
  return parts.join(' · ');
}
