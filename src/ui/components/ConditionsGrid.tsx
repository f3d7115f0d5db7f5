// The grid of condition cards (one per condition of the spec, in spec order), the run status with Run /
// Cancel, "What the answers say" (answer-level verdicts over the current answers) and "Add condition"
// from templates. Must never run anything itself: Run and Cancel go to the session; adding a condition
// only changes the spec.
import { useId, useMemo, useState } from 'react';
import type { Condition, ExperimentSpec } from '../../lab/spec/experiment';
import type { ConditionResult } from '../../lab/spec/results';
import { DEMO_MARKERS, evalSpec, panelJudge } from '../eval/eval-view';
import { cardJudgeId, evalStore, useEval } from '../eval/eval-store';
import { startCardJudge } from '../eval/eval-requests';
import { judgeKey } from '../eval/judge-key';
import { CardJudge } from './CardJudge';
import { isDone } from '../results-state';
import { useSession } from '../session-context';
import { addCondition, finetunedKey } from '../spec-edit';
import { useLab } from '../store';
import { effectiveMarkers, isDemoSpec, referenceIds, summarizeAnswers, type Judged } from '../verdicts';
import { AnswerSummary } from './AnswerSummary';
import { ConditionCard, type CardReferences } from './ConditionCard';

interface Template {
  id: string;
  label: string;
  make: (spec: ExperimentSpec) => Omit<Condition, 'id'> & { id?: string };
  needsAdapter?: boolean;
}

const TEMPLATES: Template[] = [
  { id: 'finetuned', label: 'Finetuned', make: (s) => ({ label: 'Finetuned', model: finetunedKey(s) }) },
  { id: 'base', label: 'Base', make: () => ({ label: 'Base', model: 'base' }) },
  {
    id: 'random-prefix',
    label: 'Finetuned, random prefix perturbation',
    make: (s) => ({
      label: 'Finetuned, prefix perturbed',
      model: finetunedKey(s),
      perturbation: { kind: 'random', segment: 'prefix', k: 10, n: 5, trials: 10, seed: 1 },
    }),
  },
  {
    id: 'random-query',
    label: 'Control: random query perturbation',
    make: (s) => ({
      label: 'Control: query perturbed',
      model: finetunedKey(s),
      perturbation: { kind: 'random', segment: 'query', k: 10, n: 5, trials: 10, seed: 0 },
    }),
  },
  {
    id: 'kv-prefix',
    label: 'Finetuned, prefix K/V from base',
    make: (s) => ({
      label: 'Finetuned, prefix K/V from base',
      model: finetunedKey(s),
      patch: { component: 'kv', layers: 'all', positions: 'prefix', source: 'base' },
    }),
  },
  {
    id: 'resid-prefix',
    label: 'Finetuned, prefix residual from base (one layer)',
    make: (s) => ({
      label: 'Finetuned, prefix residual L1 from base',
      model: finetunedKey(s),
      patch: { component: 'resid', layers: [1], positions: 'prefix', source: 'base' },
    }),
  },
  {
    id: 'kv-query-control',
    label: 'Control: query K/V from base',
    make: (s) => ({
      label: 'Control: query K/V from base',
      model: finetunedKey(s),
      patch: { component: 'kv', layers: 'all', positions: 'query-control', source: 'base' },
    }),
  },
  {
    id: 'dose',
    label: 'Finetuned at LoRA dose 0.5',
    needsAdapter: true,
    make: (s) => ({ label: 'LoRA dose 0.5', model: finetunedKey(s), loraScale: 0.5 }),
  },
];

export function ConditionsGrid() {
  const spec = useLab((s) => s.spec);
  const setSpec = useLab((s) => s.setSpec);
  const conditions = useLab((s) => s.conditions);
  const prompt = useLab((s) => s.prompt);
  const run = useLab((s) => s.run);
  const autoRun = useLab((s) => s.ui.autoRun);
  const setUi = useLab((s) => s.setUi);
  const session = useSession();
  const uid = useId();
  const hasAdapter = !!spec.models[finetunedKey(spec)]?.adapter;
  const templates = TEMPLATES.filter((t) => !t.needsAdapter || hasAdapter);
  const [choice, setChoice] = useState(templates[0].id);
  const full = spec.conditions.length >= 32;
  const typedMarkers = useLab((s) => s.ui.markers);
  const demo = isDemoSpec(spec);
  const markers = useMemo(() => effectiveMarkers(spec, typedMarkers), [spec, typedMarkers]);
  // NOTE: only answers final for the spec as it is now count; a stale answer must not feed a verdict.
  const current = useMemo(() => {
    const out: Record<string, ConditionResult | undefined> = {};
    for (const c of spec.conditions) {
      const st = conditions[c.id];
      if (isDone(st, spec, c.id) && st?.result) out[c.id] = st.result;
    }
    return out;
  }, [spec, conditions]);
  // The Evaluation panel's judge on the cards' answers ("Judge these answers"), by answer text.
  const form = useEval((s) => s.form);
  const compact = useEval((s) => s.compact);
  const cards = useEval((s) => s.cards);
  const judgeChoice = panelJudge(spec, form.judge);
  const judgeId = cardJudgeId(form, judgeChoice, compact);
  const question = spec.conversation.user;
  const judgeActive =
    judgeChoice !== 'marker' &&
    cards.judgeId === judgeId &&
    cards.question === question &&
    Object.keys(cards.byText).length > 0;
  const judged: Judged | null = useMemo(
    () => (judgeActive ? (text: string) => cards.byText[text] : null),
    [judgeActive, cards.byText],
  );
  const cardAnswers = useMemo(
    () =>
      Object.values(current).flatMap((r) =>
        r && !r.error ? [r.text, ...(r.trials ?? []).map((t) => t.text)].filter((t) => t.trim()) : [],
      ),
    [current],
  );
  const unjudged = new Set(cardAnswers.filter((t) => !judgeActive || !cards.byText[t])).size;
  const judgeLabel =
    judgeChoice === 'marker'
      ? null
      : judgeChoice === 'api'
        ? `the API judge ${form.model}`
        : `the ${judgeChoice} model`;
  const judgeCards = () =>
    startCardJudge(evalStore, session?.engineQueue ?? null, {
      spec,
      target: evalSpec(spec, compact),
      form: { ...form, judge: judgeChoice, key: judgeKey.get() },
      judgeId,
      question,
      answers: cardAnswers,
    });
  const summary = useMemo(
    () => summarizeAnswers(spec, current, markers, judged),
    [spec, current, markers, judged],
  );
  const refs: CardReferences = useMemo(() => {
    const ids = referenceIds(spec);
    const pick = (id: string | null) => {
      const r = id ? current[id] : undefined;
      return id && r && !r.error ? { id, text: r.text } : null;
    };
    return { base: pick(ids.base), finetuned: pick(ids.finetuned) };
  }, [spec, current]);

  const add = () => {
    const t = templates.find((x) => x.id === choice) ?? templates[0];
    setSpec((s) => addCondition(s, t.make(s)).spec);
  };

  return (
    <section className="panel conditions" aria-labelledby={`${uid}-h`}>
      <div className="row wrap panel-head">
        <h2 id={`${uid}-h`}>Conditions</h2>
        <span className="muted small" role="status" data-testid="run-status">
          {run.status === 'running'
            ? 'running…'
            : run.status === 'done'
              ? 'all answers in'
              : run.status === 'cancelled'
                ? 'cancelled'
                : ''}
        </span>
        <span className="spacer" />
        <label className="check small">
          <input type="checkbox" checked={autoRun} onChange={(e) => setUi({ autoRun: e.target.checked })} />
          re-run on change
        </label>
        {run.status === 'running' ? (
          <button type="button" className="btn" onClick={() => session?.cancelRun()}>
            Cancel
          </button>
        ) : (
          <button
            type="button"
            className="btn primary"
            onClick={() => void session?.refresh({ all: true })}
            data-testid="run"
          >
            Run
          </button>
        )}
      </div>
      {run.status === 'error' && run.error && (
        <p role="alert" className="error">
          The run failed: {run.error}
        </p>
      )}
      <AnswerSummary
        summary={summary}
        markers={markers}
        markersText={typedMarkers ?? (demo ? DEMO_MARKERS : '')}
        onMarkers={(v) => setUi({ markers: v })}
        demo={demo}
        judged={judgeActive}
      >
        <CardJudge
          judgeLabel={judgeLabel}
          cards={cards}
          active={judgeActive}
          unjudged={unjudged}
          onJudge={judgeCards}
          onCancel={() => cards.cancel?.()}
          onForget={() =>
            evalStore.setState({ cards: { ...evalStore.getState().cards, byText: {}, error: null } })
          }
        />
      </AnswerSummary>
      <div className="card-grid">
        {spec.conditions.map((c) => (
          <ConditionCard
            key={c.id}
            condition={c}
            state={conditions[c.id]}
            basePrompt={prompt}
            canRemove={spec.conditions.length > 1}
            markers={markers}
            refs={refs}
            judged={judged}
          />
        ))}
      </div>
      <div className="row wrap add-condition">
        <label className="field inline">
          <span>Add</span>
          <select value={choice} onChange={(e) => setChoice(e.target.value)} aria-label="condition template">
            {templates.map((t) => (
              <option key={t.id} value={t.id}>
                {t.label}
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="btn" onClick={add} disabled={full}>
          Add condition
        </button>
        {full && <span className="muted small">At most 32 conditions.</span>}
      </div>
    </section>
  );
}
