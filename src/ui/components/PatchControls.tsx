// Patch controls for the patch-target condition: component (K/V or residual), layers (all / range /
// picked on a mini ruler), positions (prefix, query control, a segment, or tokens picked on the strip),
// the source model, and the LoRA dose slider when the condition's model is an adapter. In one column (a
// phone) they open inside the card being patched (`inCard`, rendered by ConditionCard) and the side panel
// only says so: there the side panels sit a page's length below the cards. Changes the spec only; must
// never compute activations or decide what a position means (the lab does).
import { useId } from 'react';
import type { LayerSelection, PatchSettings, PositionSelection } from '../../lab/spec/experiment';
import { describePatch } from '../describe';
import { setLoraScale, setPatch } from '../spec-edit';
import { ONE_COLUMN_QUERY, useMediaQuery } from '../hooks/useMediaQuery';
import { useLab, type LabState } from '../store';
import { LayerRuler } from './LayerRuler';

const DEFAULT_PATCH: PatchSettings = { component: 'kv', layers: 'all', positions: 'prefix', source: 'base' };

/** Layers of a model as far as the UI knows: the engine's info, else sweep / drift results. */
function knownLayerCount(s: Pick<LabState, 'info' | 'sweep' | 'drift'>, model: string): number | null {
  const mi = s.info?.models.find((m) => m.key === model) ?? s.info?.models[0];
  if (mi) return mi.numLayers;
  const kv = s.sweep.results.kv;
  if (kv) return kv.layers.length;
  const resid = s.sweep.results.resid;
  if (resid) return Math.max(1, resid.layers.length - 1);
  if (s.drift.result) return s.drift.result.layers.length;
  return null;
}

type LayerMode = 'all' | 'range' | 'pick';
const layerMode = (l: LayerSelection): LayerMode =>
  l === 'all' ? 'all' : Array.isArray(l) ? 'pick' : 'range';
type PosMode = 'prefix' | 'query-control' | 'query' | 'postfix' | 'picked';
const posMode = (p: PositionSelection): PosMode => (typeof p === 'object' ? 'picked' : p);

interface Props {
  /** rendered inside the target card (one-column layout): no condition picker, a Close button */
  inCard?: boolean;
}

export function PatchControls({ inCard = false }: Props) {
  const oneColumn = useMediaQuery(ONE_COLUMN_QUERY);
  if (oneColumn && !inCard)
    return (
      <section className="panel" aria-label="Patch">
        <h2>Patch</h2>
        <p className="muted small" data-testid="patch-hint">
          Press <b>Patch</b> on a card: its patch controls open inside that card.
        </p>
      </section>
    );
  return <PatchForm inCard={inCard} />;
}

function PatchForm({ inCard }: { inCard: boolean }) {
  const spec = useLab((s) => s.spec);
  const setSpec = useLab((s) => s.setSpec);
  const ui = useLab((s) => s.ui);
  const setUi = useLab((s) => s.setUi);
  const prompt = useLab((s) => s.prompt);
  const info = useLab((s) => s.info);
  const sweep = useLab((s) => s.sweep);
  const drift = useLab((s) => s.drift);
  const uid = useId();
  const target = spec.conditions.find((c) => c.id === ui.patchTarget) ?? null;
  const patch = target?.patch;
  const nLayers = target ? knownLayerCount({ info, sweep, drift }, target.model) : null;
  const sites = patch && nLayers !== null ? (patch.component === 'resid' ? nLayers + 1 : nLayers) : null;
  const adapter = target ? !!spec.models[target.model]?.adapter : false;

  const update = (p: Partial<PatchSettings>) => {
    if (!target || !patch) return;
    setSpec((s) => setPatch(s, target.id, { ...patch, ...p }));
  };
  const setLayerMode = (m: LayerMode) => {
    const max = sites !== null ? sites - 1 : 0;
    if (m === 'all') update({ layers: 'all' });
    else if (m === 'range') update({ layers: { from: 0, to: Math.max(0, Math.min(max, 3)) } });
    else update({ layers: [0] });
  };
  const setPosMode = (m: PosMode) => {
    if (m === 'picked') {
      const first = prompt ? prompt.segments.prefix[0] : 0;
      update({ positions: { explicit: [first] } });
      setUi({ pickPositions: true, selectedToken: null });
    } else {
      update({ positions: m });
      setUi({ pickPositions: false });
    }
  };

  return (
    <section
      className={inCard ? 'card-patch' : 'panel'}
      aria-labelledby={`${uid}-h`}
      data-testid={inCard ? 'card-patch' : undefined}
    >
      {inCard ? (
        <div className="row">
          <h4 id={`${uid}-h`}>Patch this card</h4>
          <span className="spacer" />
          <button
            type="button"
            className="btn small"
            onClick={() => setUi({ patchOpen: false, pickPositions: false })}
            aria-label="close the patch controls"
          >
            Close
          </button>
        </div>
      ) : (
        <h2 id={`${uid}-h`}>Patch</h2>
      )}
      {!inCard && (
        <label className="field">
          <span>Condition</span>
          <select
            value={target?.id ?? ''}
            onChange={(e) => setUi({ patchTarget: e.target.value || null, pickPositions: false })}
            aria-label="condition that the patch controls change"
          >
            {!target && <option value="">— choose —</option>}
            {spec.conditions.map((c) => (
              <option key={c.id} value={c.id}>
                {c.label}
                {c.patch ? ' (patched)' : ''}
              </option>
            ))}
          </select>
        </label>
      )}
      {!target && (
        <p className="muted small">Pick a condition to patch, or add “Finetuned, prefix K/V from base”.</p>
      )}
      {target && !patch && (
        <button
          type="button"
          className="btn"
          onClick={() => setSpec((s) => setPatch(s, target.id, { ...DEFAULT_PATCH }))}
        >
          Patch this condition from base
        </button>
      )}
      {target && patch && (
        <div className="stack" data-testid="patch-controls">
          <fieldset className="seg-control">
            <legend>Component</legend>
            <label>
              <input
                type="radio"
                name={`${uid}-comp`}
                checked={patch.component === 'kv'}
                onChange={() => update({ component: 'kv' })}
              />
              K/V
            </label>
            <label>
              <input
                type="radio"
                name={`${uid}-comp`}
                checked={patch.component === 'resid'}
                onChange={() => update({ component: 'resid' })}
              />
              Residual
            </label>
          </fieldset>
          <fieldset className="seg-control">
            <legend>Layers</legend>
            {(['all', 'range', 'pick'] as const).map((m) => (
              <label key={m}>
                <input
                  type="radio"
                  name={`${uid}-layers`}
                  checked={layerMode(patch.layers) === m}
                  onChange={() => setLayerMode(m)}
                />
                {m === 'all' ? 'all' : m === 'range' ? 'range' : 'pick'}
              </label>
            ))}
          </fieldset>
          {typeof patch.layers === 'object' && !Array.isArray(patch.layers) && (
            <div className="row">
              <label className="field inline num">
                <span>from</span>
                <input
                  type="number"
                  min={0}
                  max={sites !== null ? sites - 1 : 1023}
                  value={patch.layers.from}
                  onChange={(e) => {
                    const from = Math.max(0, Math.round(Number(e.target.value)));
                    const l = patch.layers as { from: number; to: number };
                    update({ layers: { from, to: Math.max(from, l.to) } });
                  }}
                />
              </label>
              <label className="field inline num">
                <span>to</span>
                <input
                  type="number"
                  min={0}
                  max={sites !== null ? sites - 1 : 1023}
                  value={patch.layers.to}
                  onChange={(e) => {
                    const to = Math.max(0, Math.round(Number(e.target.value)));
                    const l = patch.layers as { from: number; to: number };
                    update({ layers: { from: Math.min(l.from, to), to } });
                  }}
                />
              </label>
            </div>
          )}
          {Array.isArray(patch.layers) &&
            (sites !== null ? (
              <LayerRuler
                count={sites}
                selected={patch.layers}
                onChange={(layers) => update({ layers })}
                label={patch.component === 'resid' ? 'residual sites to patch' : 'layers to patch'}
              />
            ) : (
              <label className="field">
                <span>layers (comma-separated)</span>
                <input
                  defaultValue={patch.layers.join(', ')}
                  onBlur={(e) => {
                    const ls = [
                      ...new Set(
                        e.target.value
                          .split(/[\s,]+/)
                          .filter(Boolean)
                          .map(Number),
                      ),
                    ].filter((x) => Number.isInteger(x) && x >= 0);
                    if (ls.length) update({ layers: ls.sort((a, b) => a - b) });
                  }}
                />
              </label>
            ))}
          <fieldset className="seg-control wrap">
            <legend>Positions</legend>
            {(
              [
                ['prefix', 'prefix'],
                ['query-control', 'query control'],
                ['query', 'query'],
                ['postfix', 'postfix'],
                ['picked', 'picked tokens'],
              ] as const
            ).map(([m, label]) => (
              <label key={m}>
                <input
                  type="radio"
                  name={`${uid}-pos`}
                  checked={posMode(patch.positions) === m}
                  onChange={() => setPosMode(m)}
                />
                {label}
              </label>
            ))}
          </fieldset>
          {typeof patch.positions === 'object' && (
            <div className="row">
              <span className="small">
                {patch.positions.explicit.length} picked: {patch.positions.explicit.join(', ')}
              </span>
              <button
                type="button"
                className="btn small"
                onClick={() => setUi({ pickPositions: !ui.pickPositions, selectedToken: null })}
                aria-pressed={ui.pickPositions}
              >
                {ui.pickPositions ? 'Done picking' : 'Pick on the strip'}
              </button>
            </div>
          )}
          <label className="field inline">
            <span>Source</span>
            <select value={patch.source} onChange={(e) => update({ source: e.target.value })}>
              {Object.keys(spec.models).map((k) => (
                <option key={k} value={k}>
                  {k}
                </option>
              ))}
            </select>
          </label>
          <p className="small muted" data-testid="patch-summary">
            {describePatch(patch)}
          </p>
          <button
            type="button"
            className="btn small"
            onClick={() => setSpec((s) => setPatch(s, target.id, undefined))}
          >
            Remove the patch
          </button>
        </div>
      )}
      {target && adapter && (
        <div className="dose">
          <label className="field">
            <span>
              LoRA dose: <b>{(target.loraScale ?? 1).toFixed(2)}</b>{' '}
              <span className="muted small">(0 = base … 1 = finetuned)</span>
            </span>
            <input
              type="range"
              min={0}
              max={1}
              step={0.05}
              value={target.loraScale ?? 1}
              onChange={(e) => setSpec((s) => setLoraScale(s, target.id, Number(e.target.value)))}
              aria-label="LoRA dose"
            />
          </label>
        </div>
      )}
      {target && !adapter && (
        <p className="muted small">The LoRA dose slider appears when this condition’s model is an adapter.</p>
      )}
    </section>
  );
}
