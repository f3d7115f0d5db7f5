// The logit lens view: residual sites (rows) × conditions (columns, side by side), each cell the
// probability of the chosen tracked token when that site's residual goes through the final norm and the
// unembedding; hover a cell for the site's top-k, click to pin it below. Compute / cancel, first answer
// position or every answer position (spec.lens), CSV of the whole result, SVG / PNG of the grid.
import { useMemo, useState } from 'react';
import { specHash } from '../../lab/spec/experiment';
import { lensGrid, lensToCsv, probColour, type LensCell } from '../charts/lens';
import { downloadText } from '../save-file';
import { useSession } from '../session-context';
import { useLab } from '../store';
import { ChartFrame } from './ChartFrame';

const CELL_W = 92;
const CELL_H = 17;
const LEFT = 58;
const TOP = 34;

const show = (t: string) => JSON.stringify(t).slice(1, -1) || '∅';

export function LogitLens() {
  const spec = useLab((s) => s.spec);
  const setSpec = useLab((s) => s.setSpec);
  const lens = useLab((s) => s.lens);
  const session = useSession();
  const [tracked, setTracked] = useState(0);
  const [pos, setPos] = useState(0);
  const [picked, setPicked] = useState<LensCell | null>(null);
  const [hover, setHover] = useState<LensCell | null>(null);
  const r = lens.result;
  const m = r ? Math.min(tracked, r.tracked.length - 1) : 0;
  const grid = useMemo(() => (r ? lensGrid(r, m, pos) : null), [r, m, pos]);
  const stale = !!r && lens.key !== specHash(spec);
  const running = lens.status === 'running';
  const answerMode = spec.lens?.positions === 'answer';
  const positions = r?.conditions.find((c) => c.positions.length > 0)?.positions ?? [];
  const shown = hover ?? picked;

  const setAnswerMode = (on: boolean) =>
    setSpec((s) => {
      const rest = { ...s.lens };
      delete rest.positions;
      const next = on ? { ...rest, positions: 'answer' as const } : rest;
      return { ...s, lens: Object.keys(next).length ? next : undefined };
    });

  const width = grid ? Math.max(LEFT + grid.conditions.length * CELL_W + 8, 400) : 0;
  const height = grid ? TOP + grid.sites.length * CELL_H + 20 : 0;

  return (
    <ChartFrame
      title="Logit lens"
      file="logit-lens"
      testId="lens-frame"
      exportable={!!grid}
      subtitle={
        r
          ? `p(${show(r.tracked[m].text)}) per layer, ${r.mode === 'answer' ? 'answer position' : 'first answer token'}${stale ? ' · settings changed: recompute' : ''}`
          : undefined
      }
      actions={
        <span className="row">
          <label className="small">
            <input
              type="checkbox"
              data-testid="lens-answer-mode"
              checked={answerMode}
              onChange={(e) => setAnswerMode(e.target.checked)}
            />{' '}
            every answer position
          </label>
          {running ? (
            <button type="button" className="btn small" onClick={() => session?.cancelLens()}>
              Cancel
            </button>
          ) : (
            <button
              type="button"
              className="btn small"
              data-testid="lens-compute"
              onClick={() => void session?.lens()}
            >
              {r ? 'Recompute' : 'Compute'}
            </button>
          )}
          {r && (
            <button
              type="button"
              className="btn small"
              data-testid="lens-csv"
              onClick={() => downloadText('logit-lens.csv', lensToCsv(r), 'text/csv')}
            >
              CSV
            </button>
          )}
        </span>
      }
    >
      {running && (
        <div className="progress-row" role="status">
          <progress aria-label="logit lens progress" />
          <span className="small muted">one forward per condition, then the lens head…</span>
        </div>
      )}
      {lens.status === 'error' && lens.error && (
        <p role="alert" className="error small">
          Logit lens failed: {lens.error}
        </p>
      )}
      {r && grid ? (
        <>
          <div className="row small">
            <label>
              token{' '}
              <select data-testid="lens-token" value={m} onChange={(e) => setTracked(Number(e.target.value))}>
                {r.tracked.map((t, i) => (
                  <option key={t.id} value={i}>
                    “{show(t.text)}” ({t.role === 'extra' ? 'tracked' : `${t.role}’s first token`})
                  </option>
                ))}
              </select>
            </label>
            {r.mode === 'answer' && positions.length > 1 && (
              <label>
                position{' '}
                <select
                  data-testid="lens-position"
                  value={pos}
                  onChange={(e) => setPos(Number(e.target.value))}
                >
                  {positions.map((p, i) => (
                    <option key={p.position} value={i}>
                      {i + 1}: after “{show(p.label)}” → “{show(p.next?.text ?? '')}”
                    </option>
                  ))}
                </select>
              </label>
            )}
          </div>
          <svg
            width={width}
            height={height}
            data-testid="lens-chart"
            role="img"
            aria-label={`logit lens: probability of ${show(r.tracked[m].text)} per layer and condition`}
            style={{ fontFamily: 'system-ui, sans-serif', fontSize: 11 }}
          >
            <text x={4} y={TOP - 6} fill="#555">
              site
            </text>
            {grid.conditions.map((c, j) => (
              <text key={c.id} x={LEFT + j * CELL_W + CELL_W / 2} y={TOP - 6} textAnchor="middle" fill="#222">
                <title>{c.error ? `${c.label}: ${c.error}` : c.label}</title>
                {c.label.length > 14 ? `${c.label.slice(0, 13)}…` : c.label}
              </text>
            ))}
            {grid.sites.map((site, i) => (
              <text key={site} x={LEFT - 6} y={TOP + i * CELL_H + CELL_H - 5} textAnchor="end" fill="#555">
                {site === grid.sites.length - 1 ? `${site} (out)` : site}
              </text>
            ))}
            {grid.cells.map((cell, k) => {
              const i = Math.floor(k / grid.conditions.length);
              const j = k % grid.conditions.length;
              const sel = picked?.site === cell.site && picked.condition === cell.condition;
              return (
                <g
                  key={`${cell.site}-${cell.condition}`}
                  onMouseEnter={() => setHover(cell)}
                  onMouseLeave={() => setHover(null)}
                  onClick={() => setPicked(sel ? null : cell)}
                  style={{ cursor: 'pointer' }}
                >
                  <rect
                    className="cell"
                    data-site={cell.site}
                    data-condition={cell.condition}
                    data-value={Number.isFinite(cell.value) ? cell.value : ''}
                    x={LEFT + j * CELL_W + 1}
                    y={TOP + i * CELL_H + 1}
                    width={CELL_W - 2}
                    height={CELL_H - 2}
                    fill={probColour(cell.value)}
                    stroke={sel ? '#d33' : 'none'}
                    strokeWidth={sel ? 2 : 0}
                  >
                    <title>
                      {`site ${cell.site} · ${cell.condition}: p = ${Number.isFinite(cell.value) ? cell.value.toFixed(4) : '—'}\n` +
                        cell.top.map((t) => `${show(t.text)} ${t.prob.toFixed(3)}`).join('\n')}
                    </title>
                  </rect>
                  <text
                    x={LEFT + j * CELL_W + CELL_W / 2}
                    y={TOP + i * CELL_H + CELL_H - 5}
                    textAnchor="middle"
                    fill={cell.value > 0.55 ? '#fff' : '#222'}
                    pointerEvents="none"
                  >
                    {Number.isFinite(cell.value) ? cell.value.toFixed(3) : '—'}
                  </text>
                </g>
              );
            })}
            <text x={4} y={height - 5} fill="#777">
              site l: the residual entering layer l → final norm → unembedding
            </text>
          </svg>
          {shown && (
            <div
              className="small"
              data-testid="lens-topk"
              data-site={shown.site}
              data-condition={shown.condition}
            >
              <strong>
                {grid.conditions.find((c) => c.id === shown.condition)?.label}, site {shown.site}:
              </strong>{' '}
              {shown.top.map((t, i) => (
                <span key={t.id} className="mono">
                  {i > 0 ? ' · ' : ''}“{show(t.text)}” {t.prob.toFixed(3)}
                </span>
              ))}
            </div>
          )}
          {r.conditions
            .filter((c) => c.note || c.error)
            .map((c) => (
              <p key={c.id} className={c.error ? 'error small' : 'muted small'}>
                {c.label}: {c.error ?? c.note}
              </p>
            ))}
        </>
      ) : (
        !running &&
        lens.status !== 'error' && (
          <p className="empty muted">
            Where does the finetuned model commit to its answer? Each layer’s residual stream read through the
            final norm and the unembedding, for every condition side by side: the probability of the finetuned
            and the base model’s first answer tokens, and each layer’s top tokens.
          </p>
        )
      )}
    </ChartFrame>
  );
}
