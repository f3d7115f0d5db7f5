// A titled chart box with "SVG" and "PNG" export buttons for the <svg> inside it. Must never draw the
// chart itself (children do) or export anything but that chart.
import { useRef, useState, type ReactNode } from 'react';
import { errorMessage } from '../../common/errors';
import { serializeSvg, svgToPng } from '../charts/export-image';
import { downloadBlob, downloadText } from '../save-file';

interface Props {
  title: string;
  /** file name stem for exports */
  file: string;
  subtitle?: ReactNode;
  actions?: ReactNode;
  exportable?: boolean;
  children: ReactNode;
  testId?: string;
}

export function ChartFrame({ title, file, subtitle, actions, exportable = true, children, testId }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string | null>(null);
  const svg = () => box.current?.querySelector('svg') ?? null;
  const saveSvg = () => {
    const el = svg();
    if (el) downloadText(`${file}.svg`, serializeSvg(el), 'image/svg+xml');
  };
  const savePng = () => {
    const el = svg();
    if (!el) return;
    svgToPng(el)
      .then((b) => downloadBlob(`${file}.png`, b))
      .catch((e: unknown) => setError(errorMessage(e)));
  };
  return (
    <section className="chart-frame" aria-label={title} data-testid={testId}>
      <header className="chart-head">
        <h3>{title}</h3>
        {subtitle && <span className="muted small">{subtitle}</span>}
        <span className="spacer" />
        {actions}
        {exportable && (
          <span className="btn-group" role="group" aria-label={`export ${title}`}>
            <button type="button" className="btn small" onClick={saveSvg} title="Save as SVG">
              SVG
            </button>
            <button type="button" className="btn small" onClick={savePng} title="Save as PNG">
              PNG
            </button>
          </span>
        )}
      </header>
      {error && (
        <p role="alert" className="error small">
          {error}
        </p>
      )}
      <div ref={box} className="chart-body">
        {children}
      </div>
    </section>
  );
}
