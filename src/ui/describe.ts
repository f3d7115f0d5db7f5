// One-line descriptions of a condition's perturbation and patch for card subtitles, labels and the
// CSV. Pure; must never decide anything about how a condition runs.
import type { Condition, ExperimentSpec, PatchSettings, Perturbation } from '../lab/spec/experiment';
import { describeLayers } from './format';

function describePositions(p: PatchSettings['positions']): string {
  if (typeof p === 'object')
    return p.explicit.length === 1 ? `position ${p.explicit[0]}` : `${p.explicit.length} picked positions`;
  if (p === 'query-control') return 'query control (as many query positions as the prefix has)';
  return `${p} positions`;
}

export function describePatch(p: PatchSettings): string {
  const comp = p.component === 'kv' ? 'K/V' : 'residual';
  const heads = p.heads ? ` · KV head${p.heads.length === 1 ? '' : 's'} ${p.heads.join(', ')}` : '';
  return `${comp} from ${p.source} · ${describeLayers(p.layers)} · ${describePositions(p.positions)}${heads}`;
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

function shortPositions(p: PatchSettings['positions']): string {
  if (typeof p === 'object')
    return p.explicit.length === 1 ? `position ${p.explicit[0]}` : 'picked positions';
  return p === 'query-control' ? 'query control' : p;
}

/**
 * The title a condition gets from its settings ("Finetuned, prefix K/V from base", "Finetuned, prefix
 * perturbed"): the default spec's titles are exactly these, and a title that still equals it follows
 * the settings when they change (spec-edit.ts); a title the user typed is left alone.
 */
export function settingsLabel(c: Condition, spec: ExperimentSpec): string {
  const role = spec.models[c.model]?.role;
  const parts = [role === 'base' ? 'Base' : role === 'finetuned' ? 'Finetuned' : c.model];
  if (c.loraScale !== undefined) parts.push(`LoRA dose ${c.loraScale}`);
  const p = c.perturbation;
  if (p)
    parts.push(
      p.kind === 'random'
        ? `${p.segment} perturbed`
        : `${p.edits.length} token edit${p.edits.length === 1 ? '' : 's'}`,
    );
  const patch = c.patch;
  if (patch) {
    const comp = patch.component === 'kv' ? 'K/V' : 'residual';
    const layers = patch.layers === 'all' ? '' : ` (${describeLayers(patch.layers)})`;
    parts.push(`${shortPositions(patch.positions)} ${comp}${layers} from ${patch.source}`);
  }
  return parts.join(', ').slice(0, 80);
}
