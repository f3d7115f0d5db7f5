// Perturbation controls for the edit-target condition: the paper's random prefix perturbation (segment,
// k, n, trials, seed) in one click, the teaching presets (change the date, capitalise / delete the system
// prompt, swap a header token, drop the system prompt) and the list of current edits. Changes the spec
// only; must never guess what a random perturbation will pick (the worker computes it).
import { useId, useState } from 'react';
import type { Condition, SegmentName } from '../../lab/experiment';
import {
  capitaliseSystemPromptEdits,
  changeDateEdits,
  deleteSystemPromptEdits,
  swapHeaderTokenEdits,
  type TokenCodec,
} from '../../lab/perturb';
import type { PromptView } from '../../lab/results';
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

  const preset = (name: string, make: (p: PromptView) => ReturnType<typeof changeDateEdits>) => {
    if (!prompt) return;
    const e = make(prompt);
    if (!e || e.length === 0) {
      notify('info', `“${name}” does not apply to this prompt.`);
      return;
    }
    setSpec((s) => addTokenEdits(setPerturbation(s, target.id, undefined), target.id, e));
  };

  return (
    <div className="perturb" aria-labelledby={`${uid}-h`}>
      <h3 id={`${uid}-h`}>Perturb “{target.label}”</h3>
      <div className="row wrap">
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
      </div>
      {current && (
        <p className="small muted">
          Now: {current.k} random {current.segment} tokens → one of their {current.n} nearest neighbours,{' '}
          {current.trials} trials, seed {current.seed}.
        </p>
      )}
      <div className="row wrap presets" role="group" aria-label="perturbation presets">
        <span className="label small">Presets</span>
        <button
          type="button"
          className="btn small"
          disabled={!prompt}
          onClick={() => preset('Change the date', (p) => changeDateEdits(p, textCodec))}
        >
          Change the date
        </button>
        <button
          type="button"
          className="btn small"
          disabled={!prompt}
          onClick={() =>
            preset('Capitalise the system prompt', (p) => capitaliseSystemPromptEdits(p, textCodec))
          }
        >
          CAPITALISE system prompt
        </button>
        <button
          type="button"
          className="btn small"
          disabled={!prompt}
          onClick={() => preset('Delete the system prompt', (p) => deleteSystemPromptEdits(p, textCodec))}
        >
          Delete system prompt tokens
        </button>
        <button
          type="button"
          className="btn small"
          disabled={!prompt}
          onClick={() => preset('Swap the user header', (p) => swapHeaderTokenEdits(p, textCodec))}
        >
          Header “user” → “system”
        </button>
        <button
          type="button"
          className="btn small"
          title="sends an empty system message to every condition: the template decides what that looks like"
          onClick={() => setSpec((s) => setSystem(s, ''))}
        >
          Drop system prompt (all)
        </button>
      </div>
      {edits.length > 0 && (
        <div className="edits">
          <span className="label small">
            {edits.length} edit{edits.length === 1 ? '' : 's'}
          </span>
          <ul className="plain small">
            {edits.map((e, i) => (
              <li key={`${i}-${describeEdit(e)}`}>
                {describeEdit(e)}{' '}
                <button
                  type="button"
                  className="btn small"
                  onClick={() => setSpec((s) => removeTokenEdit(s, target.id, i))}
                  aria-label={`remove edit ${describeEdit(e)}`}
                >
                  ✕
                </button>
              </li>
            ))}
          </ul>
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
