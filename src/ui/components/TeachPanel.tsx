// The Teach section: four guided presets (what the prefix is; perturbing it; patching it from the base
// model; TReFT), reachable from the first screen. Choosing one loads its spec and shows its few
// sentences; "Back to my experiment" restores the spec from before the first lesson (store.ts
// startLesson / leaveLesson), however many lessons were opened since; the patching one also starts the heatmap sweep and
// then the per-layer patch (the plainest answer to "which layer"). Must never change the spec except
// through a preset's builder.
import { useId, useMemo } from 'react';
import type { ConditionResult } from '../../lab/spec/results';
import { isDone, promptKey } from '../results-state';
import { useSession } from '../session-context';
import { labStore, useLab } from '../store';
import { TEACH, teachPreset, type TeachPreset } from '../teach';
import { lessonReading } from '../teach-reading';
import { effectiveMarkers } from '../verdicts';

/** "On this screen": the lesson's reading of the answers and the heatmap as they are now. */
function LessonReadingView({ lesson }: { lesson: TeachPreset }) {
  const spec = useLab((s) => s.spec);
  const conditions = useLab((s) => s.conditions);
  const prompt = useLab((s) => s.prompt);
  const typedMarkers = useLab((s) => s.ui.markers);
  const sweep = useLab((s) => s.sweep);
  const layerSweep = useLab((s) => s.layerSweep);
  const reading = useMemo(() => {
    // NOTE: only answers final for the spec as it is now, as the cards and the summary row use
    const results: Record<string, ConditionResult | undefined> = {};
    for (const c of spec.conditions) {
      const st = conditions[c.id];
      if (isDone(st, spec, c.id) && st?.result) results[c.id] = st.result;
    }
    const key = promptKey(spec);
    const kv = sweep.results.kv;
    const layers = layerSweep.result;
    return lessonReading(lesson.id, {
      spec,
      results,
      markers: effectiveMarkers(spec, typedMarkers),
      prompt,
      sweep: kv && kv.done && !kv.axis && sweep.key === key ? kv : null,
      layerSweep:
        layers && layers.done && layers.component === 'kv' && layerSweep.key === key ? layers : null,
    });
  }, [lesson.id, spec, conditions, prompt, typedMarkers, sweep, layerSweep]);
  return (
    <div className="teach-reading" data-testid="teach-reading" data-ready={reading ? 'true' : 'false'}>
      <b>On this screen:</b>{' '}
      {reading ? (
        reading.map((p, i) => <span key={i}>{p} </span>)
      ) : (
        <span className="muted">the lesson reads the answers here once they are in.</span>
      )}
    </div>
  );
}

export function TeachPanel() {
  const teach = useLab((s) => s.ui.teach);
  const startLesson = useLab((s) => s.startLesson);
  const leaveLesson = useLab((s) => s.leaveLesson);
  const session = useSession();
  const uid = useId();
  const active = teach ? teachPreset(teach) : null;

  const start = (id: (typeof TEACH)[number]['id']) => {
    const p = teachPreset(id);
    if (startLesson(id, p.build())) {
      // NOTE: answers first, then the sweep (the engine runs one request at a time).
      if (p.sweep && session)
        void session
          .refresh()
          .then(() => session.sweep('kv'))
          // NOTE: not after "Back to my experiment" or another lesson: that spec did not ask for it
          .then(() => (labStore.getState().ui.teach === id ? session.layerSweep('kv') : undefined));
    }
  };

  return (
    <section className="teach" aria-labelledby={`${uid}-h`} id="teach">
      <div className="row wrap teach-bar">
        <h2 id={`${uid}-h`} className="teach-title">
          Teach
        </h2>
        {TEACH.map((t) => (
          <button
            type="button"
            key={t.id}
            className={`btn teach-btn${teach === t.id ? ' on' : ''}`}
            onClick={() => start(t.id)}
            aria-pressed={teach === t.id}
            title={t.blurb}
            data-testid={`teach-${t.id}`}
          >
            {t.title}
          </button>
        ))}
      </div>
      {active && (
        <div className="teach-body" role="region" aria-label={active.title} data-testid="teach-body">
          <div>
            <h3>{active.title}</h3>
            {active.body.map((p, i) => (
              <p key={i}>{p}</p>
            ))}
            <LessonReadingView lesson={active} />
            <p className="look">
              <b>Look at:</b> {active.lookAt}
            </p>
          </div>
          <div className="teach-actions">
            <button
              type="button"
              className="btn small"
              onClick={() => leaveLesson(true)}
              data-testid="teach-back"
            >
              Back to my experiment
            </button>
            <button type="button" className="btn small" onClick={() => leaveLesson(false)}>
              Hide
            </button>
          </div>
        </div>
      )}
    </section>
  );
}
