// The layer × position patching heatmap: a d3-drawn <svg data-testid="heatmap"> with hover read-out,
// arrow-key navigation (Enter adds the focused cell as a condition) and horizontal scrolling when wide.
// Adding a cell's condition puts a card above the map; the map is pinned where it was on screen while
// that card grows, so the page does not jump under the pointer.
// Must never start a sweep itself (the plots panel does) or render labels as HTML.
import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import '../charts/heatmap.css';
import {
  cellAt,
  drawHeatmapFocus,
  renderHeatmap,
  type HeatmapCell,
  type HeatmapData,
} from '../charts/heatmap';
import { displayToken, formatMetric } from '../format';
import { useWidth } from '../hooks/useWidth';

interface Props {
  data: HeatmapData;
  onCellClick?: (cell: HeatmapCell) => void;
  /** how a cell's patch is described in the read-out, e.g. "K/V" */
  componentLabel: string;
}

/**
 * How long after a click the map is held in place while the new card above it renders and fills, ms.
 * NOTE: the card's answer streams in and its metrics row appears when it is done, which on a loaded
 * machine is well past 6 s (CI saw the map move 4 px after a 6 s pin); any user scroll or click ends
 * the pin sooner.
 */
const PIN_MS = 60_000;

/**
 * Keeps `el` at its current height on screen while the page changes size, for `ms` or until the user
 * scrolls. NOTE: the browser's scroll anchoring may pick an element beside the cards (the side panel),
 * which does not move, and then lets the map jump by the new card's height.
 */
function pinOnScreen(el: Element, ms: number): void {
  if (typeof ResizeObserver === 'undefined') return;
  const top0 = el.getBoundingClientRect().top;
  const fix = () => {
    const d = el.getBoundingClientRect().top - top0;
    if (Math.abs(d) >= 1) window.scrollBy(0, d);
  };
  const ro = new ResizeObserver(fix);
  ro.observe(document.body);
  const stop = () => {
    ro.disconnect();
    for (const ev of USER_SCROLL) window.removeEventListener(ev, stop);
  };
  for (const ev of USER_SCROLL) window.addEventListener(ev, stop, { passive: true });
  window.setTimeout(stop, ms);
}
const USER_SCROLL = ['wheel', 'touchstart', 'keydown', 'pointerdown'] as const;

export function Heatmap({ data, onCellClick, componentLabel }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const svg = useRef<SVGSVGElement>(null);
  const width = useWidth(box, 800);
  const [hover, setHover] = useState<HeatmapCell | null>(null);
  const [focus, setFocus] = useState<{ row: number; col: number } | null>(null);
  const nL = data.layers.length;
  const nP = data.positions.length;

  const w = Math.max(320, width);
  const addCell = (c: HeatmapCell) => {
    if (!onCellClick) return;
    if (svg.current) pinOnScreen(svg.current, PIN_MS);
    onCellClick(c);
  };
  const addRef = useRef(addCell);
  useEffect(() => {
    addRef.current = addCell;
  });
  const focusRef = useRef(focus);
  useEffect(() => {
    focusRef.current = focus;
  }, [focus]);
  useEffect(() => {
    if (!svg.current) return;
    renderHeatmap(svg.current, data, {
      width: w,
      focus: focusRef.current,
      onHover: setHover,
      onClick: (c) => {
        setFocus({ row: c.row, col: c.col });
        addRef.current(c);
      },
    });
  }, [data, w, onCellClick]);
  useEffect(() => {
    if (svg.current) drawHeatmapFocus(svg.current, data, w, focus);
  }, [data, w, focus]);

  const onKey = (e: KeyboardEvent<SVGSVGElement>) => {
    if (nL === 0 || nP === 0) return;
    if (!focus && e.key.startsWith('Arrow')) {
      // the first arrow key shows the focus on the top-left cell
      e.preventDefault();
      setFocus({ row: 0, col: 0 });
      setHover(cellAt(data, 0, 0));
      return;
    }
    const f = focus ?? { row: 0, col: 0 };
    let { row, col } = f;
    if (e.key === 'ArrowRight') col = Math.min(nP - 1, col + 1);
    else if (e.key === 'ArrowLeft') col = Math.max(0, col - 1);
    else if (e.key === 'ArrowDown') row = Math.min(nL - 1, row + 1);
    else if (e.key === 'ArrowUp') row = Math.max(0, row - 1);
    else if (e.key === 'Enter' || e.key === ' ') {
      if (focus) addCell(cellAt(data, focus.row, focus.col));
      e.preventDefault();
      return;
    } else return;
    e.preventDefault();
    setFocus({ row, col });
    setHover(cellAt(data, row, col));
  };

  const shown = hover;
  return (
    <div className="heatmap">
      <div ref={box} className="chart-scroll">
        <svg
          ref={svg}
          data-testid="heatmap"
          tabIndex={0}
          role="img"
          aria-label={`${componentLabel} patching heatmap: ${nL} layers by ${nP} positions; arrow keys move, Enter adds the cell as a condition`}
          onKeyDown={onKey}
        />
      </div>
      <p className="readout small" aria-live="polite" data-testid="heatmap-readout">
        {shown ? (
          <>
            {data.rowLabels?.[shown.row] === 'out' ? (
              <>residual after the last layer</>
            ) : (
              <>
                layer <b>{data.rowLabels?.[shown.row] ?? shown.layer}</b>
              </>
            )}{' '}
            · position <b>{shown.position}</b> <code>{displayToken(shown.label)}</code> · {data.metric}{' '}
            <b>{formatMetric(shown.value)}</b>
            {onCellClick && (
              <span className="muted"> — click or Enter adds this {componentLabel} patch as a condition</span>
            )}
          </>
        ) : (
          <span className="muted">
            Hover a cell (or focus the map and use the arrow keys) to read its value.
          </span>
        )}
      </p>
    </div>
  );
}
