// Display formatting for the lab UI: token texts with visible whitespace, metric numbers, layer
// selections and model sources (byte sizes: common/format.ts).
// Pure string functions; must never touch the DOM or produce HTML (callers render the result as text).

import type { LayerSelection, ModelSource } from '../lab/spec/experiment';

/** A token's text with whitespace made visible: space → ·, newline → ↵, tab → ⇥; empty → ∅. */
export function displayToken(text: string): string {
  if (text.length === 0) return '∅';
  return text.replace(/ /g, '·').replace(/\r?\n/g, '↵').replace(/\t/g, '⇥');
}

/** A short label for an axis tick: the visible token text, cut to `max` characters with an ellipsis. */
export function tickLabel(text: string, max = 10): string {
  const t = displayToken(text);
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** A metric value: fixed digits, a dash when missing or not finite. */
export function formatMetric(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return v.toFixed(digits);
}

/** Layer selection in words: 'all' | [3, 5] | {from, to}. */
export function describeLayers(layers: LayerSelection): string {
  if (layers === 'all') return 'all layers';
  if (Array.isArray(layers)) {
    if (layers.length === 0) return 'no layers';
    return layers.length === 1 ? `layer ${layers[0]}` : `layers ${layers.join(', ')}`;
  }
  return layers.from === layers.to ? `layer ${layers.from}` : `layers ${layers.from}–${layers.to}`;
}

/** A model source in words. */
export function describeSource(src: ModelSource): string {
  switch (src.kind) {
    case 'demo':
      return `${src.name} (embedded demo)`;
    case 'hub':
      return src.revision ? `${src.repo}@${src.revision}` : src.repo;
    case 'url':
      return src.url;
    case 'local':
      return `local: ${src.path}`;
  }
}

/** "owner/name@rev" → a hub source; null when it is not one. */
export function parseHubRef(text: string): { kind: 'hub'; repo: string; revision?: string } | null {
  const m = /^\s*([A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*)(?:@([\w./-]+))?\s*$/.exec(text);
  if (!m) return null;
  return m[2] ? { kind: 'hub', repo: m[1], revision: m[2] } : { kind: 'hub', repo: m[1] };
}
