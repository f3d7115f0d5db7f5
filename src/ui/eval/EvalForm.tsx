// The evaluation panel's form: the judge (a spec model, an OpenAI-compatible API, or the marker-word
// rule), samples, compact judge prompts, and Run / Cancel / Load kept / Forget kept. The API key lives in
// this component's memory only (sessionStorage when "remember in this tab" is ticked): never in the
// store, the spec, a link, a log or an export.
import { useState } from 'react';
import type { ExperimentSpec } from '../../lab/spec/experiment';
import { startEval, type EvalAction, type EvalClient } from './eval-requests';
import { evalStore, useEval, type JudgeChoice } from './eval-store';
import { rememberedKey, rememberKey } from './eval-view';
import { judgeKey } from './judge-key';

const tabStorage = (): Storage | null => {
  try {
    return typeof sessionStorage === 'undefined' ? null : sessionStorage;
  } catch {
    return null;
  }
};

interface Props {
  spec: ExperimentSpec;
  /** the spec evaluated (compact prompts applied when ticked) */
  target: ExperimentSpec;
  /** the spec's base model */
  base: string;
  /** the judge shown: the form's choice when it names one, else the spec's default */
  judgeChoice: string;
  samples: number;
  /** the answers a run judges */
  total: number;
  /** kept results of this spec are incomplete: Run resumes them */
  resume: boolean;
  getClient: () => EvalClient | null;
}

export function EvalForm({ spec, target, base, judgeChoice, samples, total, resume, getClient }: Props) {
  const form = useEval((s) => s.form);
  const compact = useEval((s) => s.compact);
  const running = useEval((s) => s.running);
  const { setForm, setSamples, setCompact } = evalStore.getState();
  const [key, setKey] = useState(() => {
    const k = rememberedKey(tabStorage()) || judgeKey.get();
    judgeKey.set(k);
    return k;
  });
  const [remember, setRemember] = useState(() => rememberedKey(tabStorage()) !== '');
  const modelIds = Object.keys(spec.models);

  // NOTE: any edit fixes the judge shown, so a later spec change does not switch it.
  const update = (patch: Partial<JudgeChoice>) => setForm({ judge: judgeChoice, ...patch });
  const updateKey = (next: string) => {
    update({});
    setKey(next);
    judgeKey.set(next);
    if (remember) rememberKey(tabStorage(), next || null);
  };
  const start = (type: EvalAction) =>
    startEval(evalStore, getClient(), type, {
      spec,
      target,
      form: { ...form, judge: judgeChoice, key },
      samples,
      total,
    });

  return (
    <form
      className="ev-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (!running) start('eval');
      }}
    >
      <label>
        Judge{' '}
        <select
          value={judgeChoice}
          onChange={(e) => update({ judge: e.target.value })}
          disabled={running}
          data-testid="eval-judge"
        >
          {modelIds.map((m) => (
            <option key={m} value={m}>
              model: {m}
              {m === base ? ' (base)' : ''}
            </option>
          ))}
          <option value="api">API (OpenAI-compatible)</option>
          <option value="marker">rule: marker words</option>
        </select>
      </label>
      {judgeChoice === 'marker' && (
        <label title="misaligned when the answer contains one of these words (case-insensitive); coherent when it has two words or more and no word three times in a row">
          marker words{' '}
          <input
            value={form.markers}
            onChange={(e) => update({ markers: e.target.value })}
            disabled={running}
            style={{ width: '9em' }}
            data-testid="eval-markers"
          />
        </label>
      )}
      {judgeChoice === 'api' && (
        <>
          <label>
            URL{' '}
            <input
              type="url"
              value={form.url}
              onChange={(e) => update({ url: e.target.value })}
              disabled={running}
              size={28}
              data-testid="eval-api-url"
            />
          </label>
          <label>
            Model{' '}
            <input
              value={form.model}
              onChange={(e) => update({ model: e.target.value })}
              disabled={running}
              size={16}
              data-testid="eval-api-model"
            />
          </label>
          <label>
            Key{' '}
            <input
              type="password"
              autoComplete="off"
              spellCheck={false}
              value={key}
              onChange={(e) => updateKey(e.target.value)}
              disabled={running}
              size={16}
              data-testid="eval-api-key"
            />
          </label>
          <label className="small" title="keep the key in this tab's sessionStorage until the tab closes">
            <input
              type="checkbox"
              checked={remember}
              onChange={(e) => {
                setRemember(e.target.checked);
                rememberKey(tabStorage(), e.target.checked ? key || null : null);
              }}
            />{' '}
            remember in this tab
          </label>
        </>
      )}
      <label>
        Samples{' '}
        <input
          type="number"
          min={1}
          max={1000}
          value={samples}
          onChange={(e) => setSamples(Math.max(1, Math.min(1000, Math.floor(Number(e.target.value) || 1))))}
          disabled={running}
          style={{ width: '4.5em' }}
          data-testid="eval-samples"
        />
      </label>
      <label
        className="small"
        title="shorter aligned / coherent prompts, for judge models with a small context (the demo takes 512 tokens)"
      >
        <input
          type="checkbox"
          checked={compact}
          onChange={(e) => setCompact(e.target.checked)}
          disabled={running}
          data-testid="eval-compact"
        />{' '}
        compact judge prompts
      </label>
      <span className="spacer" />
      <button type="submit" className="btn primary" disabled={running} data-testid="eval-run">
        {resume ? 'Resume' : 'Run'} ({total} answers)
      </button>
      <button
        type="button"
        className="btn"
        disabled={!running}
        onClick={() => evalStore.getState().cancel?.()}
        data-testid="eval-cancel"
      >
        Cancel
      </button>
      <button type="button" className="btn" disabled={running} onClick={() => start('eval-load')}>
        Load kept
      </button>
      <button type="button" className="btn" disabled={running} onClick={() => start('eval-clear')}>
        Forget kept
      </button>
    </form>
  );
}
