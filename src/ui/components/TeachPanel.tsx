// The Teach section: four guided presets (what the prefix is; perturbing it; patching it from the base
// model; TReFT), reachable from the first screen. Choosing one loads its spec and shows its few
// sentences; "Back to my experiment" restores the spec from before the first lesson (store.ts
// startLesson / leaveLesson), however many lessons were opened since; the patching one also starts the heatmap sweep and
// then the per-layer patch (the plainest answer to "which layer"). Must never change the spec except
// through a preset's builder.
import { useId } from 'react';
import { useSession } from '../session-context';
import { labStore, useLab } from '../store';
import { TEACH, teachPreset } from '../teach';

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
