// A condition card's next-token distribution: a small d3 bar chart of the top tokens. Must never
// render token text as HTML (d3 .text() only).
import { useEffect, useRef } from 'react';
import type { TokenProb } from '../../lab/results';
import { renderNextTokenBars } from '../charts/bars';

export function NextTokenBars({
  tokens,
  width = 240,
  highlight,
}: {
  tokens: TokenProb[];
  width?: number;
  highlight?: number;
}) {
  const ref = useRef<SVGSVGElement>(null);
  useEffect(() => {
    if (ref.current) renderNextTokenBars(ref.current, tokens, width, highlight);
  }, [tokens, width, highlight]);
  const summary = tokens
    .slice(0, 3)
    .map((t) => `${JSON.stringify(t.text)} ${(t.prob * 100).toFixed(0)}%`)
    .join(', ');
  return <svg ref={ref} className="next-token-bars" role="img" aria-label={`next token: ${summary}`} />;
}
