// Perturbation controls for the edit-target condition, in one compact row: the paper's random
// perturbation (segment, k, n, trials, seed) in one click, the teaching presets (change the date,
// capitalise / delete the system prompt, swap a header token, drop the system prompt), and the current
// hand edits as removable chips. Changes the spec only; must never guess what a random perturbation will
// pick (the worker computes it).
import { useId, useState } from 'react';
import type { Condition, SegmentName, TokenEdit } from '../../lab/spec/experiment';
import {
  capitaliseSystemPromptEdits,
  changeDateEdits,
  deleteSystemPromptEdits,
  swapHeaderTokenEdits,
  type TokenCodec,
} from '../../lab/interventions/perturb';
import type { PromptView } from '../../lab/spec/results';
import {
  addTokenEdits,
  DEFAULT_RANDOM,
  removeTokenEdit,
  setPerturbation,
  setRandomPerturbation,
  setSystem,
  type RandomParams,
} from '../spec-edit';
import { useLab } from '../store';
import { describeEdit } from './TokenEditor';

// NOTE: presets emit {text} edits, and textEdits only asks encode() whether the new text is empty; the
// worker does the real tokenization when it runs the condition.
const textCodec: TokenCodec = { encode: (t) => (t.length ? [-1] : []) };

interface Preset {
  id: string;
  label: string;
  edits?: (p: PromptView) => TokenEdit[] | null;
}

const PRESETS: Preset[] = [
  { id: 'date', label: 'Change the date', edits: (p) => changeDateEdits(p, textCodec) },
  {
    id: 'caps',
    label: 'CAPITALISE the system prompt',
    edits: (p) => capitaliseSystemPromptEdits(p, textCodec),
  },
  {
    id: 'del',
    label: 'Delete the system prompt tokens',
    edits: (p) => deleteSystemPromptEdits(p, textCodec),
  },
  { id: 'header', label: 'Header “user” → “system”', edits: (p) => swapHeaderTokenEdits(p, textCodec) },
  { id: 'drop', label: 'Drop the system prompt (every condition)' },
];

export function PerturbControls({ prompt, target }: { prompt: PromptView | null; target: Condition }) {
  const setSpec = useLab((s) => s.setSpec);
  const notify = useLab((s) => s.notify);
  const uid = useId();
  const current = target.perturbation?.kind === 'random' ? target.perturbation : null;
  const [params, setParams] = useState<RandomParams>(current ?? DEFAULT_RANDOM);
  const edits = target.perturbation?.kind === 'edits' ? target.perturbation.edits : [];

  const num = (k: 'k' | 'n' | 'trials' | 'seed', min: number, max: number) => (
    <label className="field inline num">
      <span>{k}</span>
      <input
        type="number"
        min={min}
        max={max}
        value={params[k]}
        onChange={(e) => {
          const v = Math.round(Number(e.target.value));
          if (Number.isFinite(v)) setParams({ ...params, [k]: Math.min(max, Math.max(min, v)) });
        }}
      />
    </label>
  );

  const applyPreset = (id: string) => {
    const p = PRESETS.find((x) => x.id === id);
    if (!p) return;
    if (!p.edits) {
      setSpec((s) => setSystem(s, ''));
      return;
    }
    const e = prompt ? p.edits(prompt) : null;
    if (!e || e.length === 0) {
      notify('info', `“${p.label}” does not apply to this prompt.`);
      return;
    }
    setSpec((s) => addTokenEdits(setPerturbation(s, target.id, undefined), target.id, e));
  };

  return (
    <div className="perturb" role="group" aria-labelledby={`${uid}-h`}>
      <div className="row wrap">
        <h3 id={`${uid}-h`} className="perturb-title">
          Perturb <span className="target-name">{target.label}</span>
        </h3>
        <label className="field inline">
          <span>segment</span>
          <select
            value={params.segment}
            onChange={(e) => setParams({ ...params, segment: e.target.value as SegmentName })}
          >
            <option value="prefix">prefix</option>
            <option value="query">query (control)</option>
            <option value="postfix">postfix</option>
          </select>
        </label>
        {num('k', 1, 512)}
        {num('n', 1, 64)}
        {num('trials', 1, 100)}
        {num('seed', 0, 0xffffffff)}
        <button
          type="button"
          className="btn primary"
          onClick={() => setSpec((s) => setRandomPerturbation(s, target.id, params))}
        >
          Perturb randomly
        </button>
        <button
          type="button"
          className="btn"
          title="the same perturbation with the next seed"
          onClick={() => {
            const next = { ...params, seed: (params.seed + 1) >>> 0 };
            setParams(next);
            setSpec((s) => setRandomPerturbation(s, target.id, next));
          }}
        >
          Next seed
        </button>
        <select
          aria-label="perturbation presets"
          value=""
          disabled={!prompt}
          onChange={(e) => {
            applyPreset(e.target.value);
            e.target.value = '';
          }}
        >
          <option value="">Presets…</option>
          {PRESETS.map((p) => (
            <option key={p.id} value={p.id}>
              {p.label}
            </option>
          ))}
        </select>
      </div>
      {current && (
        <p className="small muted">
          Now: {current.k} random {current.segment} tokens → one of their {current.n} nearest neighbours,{' '}
          {current.trials} trials, seed {current.seed}.
        </p>
      )}
      {edits.length > 0 && (
        <div className="row wrap edits small">
          <span className="label">
            {edits.length} hand edit{edits.length === 1 ? '' : 's'}:
          </span>
          {edits.map((e, i) => (
            <span key={`${i}-${describeEdit(e)}`} className="tag edit-chip">
              {describeEdit(e)}{' '}
              <button
                type="button"
                className="btn tiny"
                onClick={() => setSpec((s) => removeTokenEdit(s, target.id, i))}
                aria-label={`remove edit ${describeEdit(e)}`}
              >
                ✕
              </button>
            </span>
          ))}
          <button
            type="button"
            className="btn small"
            onClick={() => setSpec((s) => setPerturbation(s, target.id, undefined))}
          >
            Clear all edits
          </button>
        </div>
      )}
    </div>
  );
}
