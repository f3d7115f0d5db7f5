// Text for numbers that every layer shows to people: byte sizes in the engine's refusals, the CLI's
// progress lines and the UI's download and memory readouts — one convention everywhere.
// Bottom layer: must never import anything of the project, Node APIs or the DOM.

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB'];

/**
 * A byte count in binary (IEC) units, since sizes here are powers of two (buffers, heaps, files):
 * "512 B", "1.5 KiB", "519 MiB", "4.0 GiB" — one decimal below 100, none from 100; "—" when the count
 * is missing, not finite or negative.
 */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n < 0) return '—';
  if (n < 1024) return `${n} B`;
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${BYTE_UNITS[i]}`;
}
