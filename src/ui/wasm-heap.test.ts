import { describe, expect, it } from 'vitest';
import { wasmHeapFromQuery } from './wasm-heap';

describe('the ?wasm-heap= setting', () => {
  it('reads MiB by default and K / M / G suffixes', () => {
    expect(wasmHeapFromQuery('?wasm-heap=512')?.bytes).toBe(512 * 1024 ** 2);
    expect(wasmHeapFromQuery('?x=1&wasm-heap=1.5G')?.bytes).toBe(1.5 * 1024 ** 3);
    expect(wasmHeapFromQuery('?wasm-heap=3000k')?.bytes).toBe(3000 * 1024);
    expect(wasmHeapFromQuery('?wasm-heap=64MiB')?.bytes).toBe(64 * 1024 ** 2);
    expect(wasmHeapFromQuery('?wasm-heap=2.5')?.label).toBe('2.5 MiB');
  });

  it('ignores what is absent, malformed, not positive or not below 4 GiB', () => {
    for (const q of [
      '',
      '?other=1',
      '?wasm-heap=',
      '?wasm-heap=abc',
      '?wasm-heap=-5',
      '?wasm-heap=0',
      '?wasm-heap=4G',
      '?wasm-heap=1e3',
      '?wasm-heap=5T',
    ])
      expect(wasmHeapFromQuery(q), q).toBeNull();
  });
});
