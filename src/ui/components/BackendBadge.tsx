// The backend badge in the header: the backend the models run on, with the adapter's name, or WASM and
// why; a software-emulated GPU (SwiftShader) is named as such (ui/backend-label.ts). Its test hook
// (data-testid="backend", data-kind = webgpu | wasm | pending, text "WebGPU · <adapter>…" / "WASM ·
// <reason>") is checked by e2e/smoke.spec.ts and must stay stable.
import { backendLabel } from '../backend-label';
import { useLab } from '../store';

export function BackendBadge() {
  const backend = useLab((s) => s.backend);
  const used = useLab((s) => s.backendUsed);
  const error = useLab((s) => s.backendError);
  const label = backendLabel(backend, used, error);
  return (
    <span
      className={`backend backend-${label.kind}${label.emulated ? ' backend-emulated' : ''}`}
      data-testid="backend"
      data-kind={label.kind}
      data-emulated={label.emulated ? 'true' : undefined}
      title={label.title}
    >
      {label.text}
    </span>
  );
}
