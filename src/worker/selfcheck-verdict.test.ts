import { describe, expect, it } from 'vitest';
import type { BackendCheck, SelfCheckResult } from './selfcheck';
import { selfCheckVerdict } from './selfcheck-verdict';

const check = (over: Partial<BackendCheck>): BackendCheck => ({
  model: 'http://127.0.0.1/fixtures/tiny-llama/',
  requested: 'wasm',
  dtype: 'fp32',
  used: 'wasm',
  maxRelError: 2e-7,
  ...over,
});
const result = (checks: BackendCheck[], crossBackend: number | null = null): SelfCheckResult => ({
  model: checks[0]?.model ?? '',
  checks,
  crossBackend,
});

describe('self-check verdict', () => {
  it('passes when every check that ran is within tolerance; a missing backend is not a failure', () => {
    const v = selfCheckVerdict(
      result([
        check({}),
        check({ dtype: 'q4' }),
        check({ requested: 'webgpu', used: null, error: 'no adapter', maxRelError: null }),
      ]),
    );
    expect(v.pass).toBe(true);
    expect(v.text).toMatch(/^PASS: all 2 checks/);
    expect(v.unavailable).toEqual(['webgpu']);
  });
  it('fails and names the check above tolerance', () => {
    const v = selfCheckVerdict(
      result([check({}), check({ model: 'x/fixtures/tiny-gemma3', dtype: 'q4', maxRelError: 3e-3 })]),
    );
    expect(v.pass).toBe(false);
    expect(v.failed).toEqual(['tiny-gemma3 wasm q4']);
    expect(v.text).toContain('1 of 2 checks');
  });
  it('fails on an error, a NaN error and a cross-backend disagreement', () => {
    expect(selfCheckVerdict(result([check({ error: 'session failed', maxRelError: null })])).pass).toBe(
      false,
    );
    expect(selfCheckVerdict(result([check({ maxRelError: NaN })])).pass).toBe(false);
    const v = selfCheckVerdict(result([check({}), check({ requested: 'webgpu', used: 'webgpu · x' })], 0.5));
    expect(v.pass).toBe(false);
    expect(v.failed).toContain('the backends disagree with each other');
  });
  it('fails when nothing could run', () => {
    const v = selfCheckVerdict(
      result([check({ used: null, error: 'no WebGPU', maxRelError: null, requested: 'webgpu' })]),
    );
    expect(v.pass).toBe(false);
    expect(v.text).toMatch(/^FAIL: no backend could run/);
  });
});
