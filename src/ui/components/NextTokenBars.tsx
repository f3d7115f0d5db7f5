// A condition card's next-token distribution: a small d3 bar chart of the top tokens that fits the
// card's width. Must never render token text as HTML (d3 .text() only).
import { useEffect, useRef } from 'react';
import type { TokenProb } from '../../lab/spec/results';
import { renderNextTokenBars } from '../charts/bars';
import { useWidth } from '../hooks/useWidth';

export function NextTokenBars({ tokens, highlight }: { tokens: TokenProb[]; highlight?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const ref = useRef<SVGSVGElement>(null);
  const width = useWidth(box, 200);
  useEffect(() => {
    if (ref.current) renderNextTokenBars(ref.current, tokens, Math.max(160, width), highlight);
  }, [tokens, width, highlight]);
  const summary = tokens
    .slice(0, 3)
    .map((t) => `${JSON.stringify(t.text)} ${(t.prob * 100).toFixed(0)}%`)
    .join(', ');
  return (
    <div ref={box} className="chart-fit">
      <svg ref={ref} className="next-token-bars" role="img" aria-label={`next token: ${summary}`} />
    </div>
  );
}
