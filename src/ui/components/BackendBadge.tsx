// The backend badge in the header: WebGPU with the adapter's name, or WASM and why. Its test hook
// (data-testid="backend", data-kind = webgpu | wasm | pending, text "WebGPU · <adapter>" / "WASM ·
// <reason>") is checked by e2e/smoke.spec.ts and must stay stable.
import { useLab } from '../store';

export function BackendBadge() {
  const backend = useLab((s) => s.backend);
  const error = useLab((s) => s.backendError);
  const text = backend
    ? backend.kind === 'webgpu'
      ? `WebGPU · ${backend.adapter}`
      : `WASM · ${backend.reason}`
    : error
      ? 'backend unknown'
      : 'detecting backend…';
  return (
    <span
      className={`backend backend-${backend?.kind ?? 'pending'}`}
      data-testid="backend"
      data-kind={backend?.kind ?? 'pending'}
      title={backend?.kind === 'webgpu' ? `shader-f16: ${backend.shaderF16 ? 'yes' : 'no'}` : undefined}
    >
      {text}
    </span>
  );
}
