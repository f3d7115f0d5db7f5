// The page's `?wasm-heap=` setting: the WebAssembly heap the memory check assumes instead of 4 GiB, to
// see what a device whose browser gives WebAssembly less memory would be refused (and which lighter
// dtype it is offered) — the e2e uses it to take the int8 path on models small enough for CI. It only
// changes the check, never what the engine allocates. Must never throw on a bad value.
import { formatBytes } from '../common/format';

const UNITS: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
/** what WebAssembly can address (wasm32): a setting above it is ignored */
const MAX = 4 * 1024 ** 3;

export interface WasmHeapSetting {
  bytes: number;
  /** “2.5 MiB”, for the Models panel */
  label: string;
}

/**
 * `?wasm-heap=512` (MiB), `512M`, `1.5G`, `3000K` → bytes; null when absent, not a positive number,
 * or not below 4 GiB (then nothing changes).
 */
export function wasmHeapFromQuery(search: string): WasmHeapSetting | null {
  const raw = new URLSearchParams(search).get('wasm-heap');
  if (raw === null) return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg])?(?:i?b)?\s*$/i.exec(raw);
  if (!m) return null;
  const bytes = Math.floor(Number(m[1]) * UNITS[(m[2] ?? 'm').toLowerCase()]);
  if (!(bytes > 0) || bytes >= MAX) return null;
  return { bytes, label: formatBytes(bytes) };
}
