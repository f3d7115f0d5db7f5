// The notice stack under the header: errors as role="alert" (with their details, e.g. which spec
// fields are wrong), information as role="status"; each dismissable. Must never render HTML from a
// message.
import { useLab } from '../store';

export function Notices() {
  const notices = useLab((s) => s.notices);
  const dismiss = useLab((s) => s.dismiss);
  if (notices.length === 0) return null;
  return (
    <div className="notices">
      {notices.map((n) => (
        <div
          key={n.id}
          className={`notice ${n.kind}`}
          role={n.kind === 'error' ? 'alert' : 'status'}
          data-testid={`notice-${n.kind}`}
        >
          <div className="notice-text">
            <p>{n.text}</p>
            {n.details && n.details.length > 0 && (
              <ul className="small">
                {n.details.slice(0, 8).map((d, i) => (
                  <li key={i}>{d}</li>
                ))}
                {n.details.length > 8 && <li>… and {n.details.length - 8} more</li>}
              </ul>
            )}
          </div>
          <button type="button" className="btn small" onClick={() => dismiss(n.id)} aria-label="dismiss">
            ✕
          </button>
        </div>
      ))}
    </div>
  );
}
