// What the header's backend badge says: the backend the models actually run on (not only what the
// probe found), and a plain warning when WebGPU is a software fallback adapter (SwiftShader: the GPU
// emulated on the CPU, far slower than WASM). Pure; must never touch the DOM or the worker.
import type { BackendProbe } from '../worker/backend-probe';

export interface BackendLabel {
  kind: 'webgpu' | 'wasm' | 'pending';
  text: string;
  /** a software-emulated GPU: the badge warns */
  emulated: boolean;
  title?: string;
}

/** `used` is the worker's announcement, e.g. "webgpu · google swiftshader (fallback)" or "wasm". */
export function backendLabel(
  probe: BackendProbe | null,
  used: { used: string } | null,
  error: string | null,
): BackendLabel {
  if (!probe)
    return { kind: 'pending', text: error ? 'backend unknown' : 'detecting backend…', emulated: false };
  const usedKind = used?.used.split(' ')[0];
  const kind: 'webgpu' | 'wasm' = usedKind === 'wasm' || usedKind === 'webgpu' ? usedKind : probe.kind;
  const emulated = kind === 'webgpu' && isSoftwareAdapter(probe.adapter);
  if (kind === 'wasm' && probe.kind === 'webgpu')
    return {
      kind,
      text: `WASM · chosen (WebGPU ${probe.adapter ?? 'adapter'} available)`,
      emulated: false,
      title: 'The Models panel’s device setting runs the models on WASM.',
    };
  if (kind === 'wasm') return { kind, text: `WASM · ${probe.reason ?? 'no WebGPU'}`, emulated: false };
  return {
    kind,
    text: emulated
      ? `WebGPU · ${probe.adapter} · software emulation on the CPU, slower than WASM`
      : `WebGPU · ${probe.adapter}`,
    emulated,
    title:
      `shader-f16: ${probe.shaderF16 ? 'yes' : 'no'}` +
      (emulated ? ' · choose WASM under Models → Device for speed' : ''),
  };
}

/** A fallback adapter, or one known to be a CPU rasteriser (SwiftShader, llvmpipe, WARP). */
export function isSoftwareAdapter(adapter: string | undefined): boolean {
  return !!adapter && /\(fallback\)|swiftshader|llvmpipe|\bwarp\b|microsoft basic render/i.test(adapter);
}

/**
 * The Backend line's reason for a fallback, or null when it would repeat what the line already says
 * (the probe's reason for WASM is also the worker's reason for falling back to it).
 */
export function fallbackNote(
  probe: BackendProbe | null,
  used: { used: string; fallbackReason?: string } | null,
): string | null {
  const reason = used?.fallbackReason?.trim();
  if (!reason) return null;
  if (probe?.kind === 'wasm' && probe.reason && reason === probe.reason.trim()) return null;
  return reason;
}

/**
 * Whether the lab should recommend WASM: the models run (or would run, under `auto` / `webgpu`) on a
 * software-emulated WebGPU adapter, which is far slower here than WASM on the same CPU.
 */
export function recommendWasm(
  probe: BackendProbe | null,
  used: { used: string } | null,
  device: 'auto' | 'webgpu' | 'wasm' | 'node',
): boolean {
  if (!probe || probe.kind !== 'webgpu' || device === 'wasm' || device === 'node') return false;
  if (used && used.used.split(' ')[0] !== 'webgpu') return false;
  return isSoftwareAdapter(probe.adapter);
}
