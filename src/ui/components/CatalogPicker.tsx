// The catalog of known real pairs (lab/run/catalog.ts): each emergent-misalignment organism on its base,
// and the bases alone, with download size, gating and what the pair shows. Choosing one edits the
// spec's models (and pins the template arguments the base needs); the worker downloads on the run.
import { useMemo } from 'react';
import { catalogPairs, estimateCatalog, type CatalogPair } from '../../lab/run/catalog';
import type { ExperimentSpec } from '../../lab/spec/experiment';
import { formatBytes } from '../../common/format';

export function isCatalogPair(models: ExperimentSpec['models']): boolean {
  const json = JSON.stringify(models);
  return catalogPairs().some((c) => c.complete && JSON.stringify(c.models) === json);
}

export function CatalogPicker({
  models,
  dtype,
  onPick,
}: {
  models: ExperimentSpec['models'];
  /** the spec's weight dtype, for the memory estimate */
  dtype: ExperimentSpec['runtime']['dtype'];
  onPick: (pair: CatalogPair) => void;
}) {
  const pairs = useMemo(() => catalogPairs().filter((p) => p.complete), []);
  const current = JSON.stringify(models);
  return (
    <div className="stack">
      <ul className="plain catalog" data-testid="catalog">
        {pairs.map((c) => (
          <li key={c.id}>
            <button
              type="button"
              className="btn link"
              onClick={() => onPick(c)}
              title={c.shows}
              aria-pressed={JSON.stringify(c.models) === current}
            >
              {c.label}
            </button>
            <span className="muted small">
              {' '}
              · {formatBytes(c.downloadBytes)} download · about{' '}
              {formatBytes(estimateCatalog(c.base, dtype).totalBytes)} in {dtype}
              {c.base.gated ? ' · gated: needs a token' : ''}
              {c.organism?.unverified ? ' · name not checked on the Hub' : ''}
            </span>
            {JSON.stringify(c.models) === current && <p className="muted small">{c.shows}</p>}
          </li>
        ))}
      </ul>
      <p className="muted small">
        LoRA organisms on their bases, downloaded from the Hugging Face Hub into this browser&apos;s cache on
        the first run. Their adapters name a re-upload (unsloth/…) as the base: you confirm the mapping before
        the base is downloaded. Choose 4-bit weights for the 1B pairs.
      </p>
    </div>
  );
}
