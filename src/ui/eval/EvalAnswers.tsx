// The answers behind a clicked bar of the evaluation panel: one row per answer with its status, the
// aligned / coherent scores and number mass (the judge's distribution on hover), and the answer text.
// Model output is rendered as React text only, never as HTML.
import type { EvalRow } from '../../lab/eval/eval-table';
import { num, pct, STATUS_COLOR, STATUS_LABEL } from './eval-view';

function Score({ s, which }: { s: EvalRow['aligned']; which: string }) {
  if (!s) return <span className="muted">–</span>;
  const title =
    `${which}: ${s.verdict}; number mass ${num(s.numberMass, 3)}, CODE ${num(s.code, 3)}, REFUSAL ${num(s.refusal, 3)}` +
    ` (${s.method})` +
    (s.top.length ? `; most likely ${s.top.map((t) => `${t.value} (${num(t.p, 3)})`).join(', ')}` : '') +
    (s.text ? `; judge said "${s.text}"` : '');
  return (
    <span title={title}>
      {s.verdict === 'score' ? (
        num(s.score)
      ) : s.verdict === 'unscored' ? (
        <span className="muted">unscored</span>
      ) : (
        s.verdict
      )}
      <span className="ev-mass muted"> · {pct(s.numberMass)}</span>
    </span>
  );
}

export function Answers({ rows, title, onClose }: { rows: EvalRow[]; title: string; onClose: () => void }) {
  return (
    <section className="chart-frame ev-answers" aria-label={`answers: ${title}`} data-testid="eval-answers">
      <header className="chart-head">
        <h3>{title}</h3>
        <span className="muted small">
          {rows.length} answer{rows.length === 1 ? '' : 's'} · score · number mass (hover for the
          distribution)
        </span>
        <span className="spacer" />
        <button type="button" className="btn small" onClick={onClose}>
          Close
        </button>
      </header>
      <div className="ev-table-wrap">
        <table className="ev-table">
          <thead>
            <tr>
              <th scope="col">question</th>
              <th scope="col">#</th>
              <th scope="col">status</th>
              <th scope="col">aligned</th>
              <th scope="col">coherent</th>
              <th scope="col">answer</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr
                key={`${r.set}|${r.question}|${r.sample}|${r.trial ?? ''}`}
                data-testid="eval-answer-row"
                data-status={r.status}
              >
                <td>
                  {r.question}
                  {r.set === 'in-domain' && <span className="muted small"> (in-domain)</span>}
                </td>
                <td>
                  {r.sample + 1}
                  {r.trial !== undefined && <span className="muted small"> · trial {r.trial + 1}</span>}
                </td>
                <td>
                  <span
                    className="ev-chip"
                    style={{ background: STATUS_COLOR[r.status] }}
                    title={STATUS_LABEL[r.status]}
                  >
                    {r.status}
                  </span>
                </td>
                <td>
                  <Score s={r.aligned} which="aligned" />
                </td>
                <td>
                  <Score s={r.coherent} which="coherent" />
                </td>
                <td className="ev-answer">
                  {r.error ? (
                    <span className="error">{r.error}</span>
                  ) : (
                    r.answer || <span className="muted">(empty)</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
