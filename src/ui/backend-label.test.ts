import { describe, expect, it } from 'vitest';
import type { BackendProbe } from '../worker/backend-probe';
import { backendLabel, fallbackNote, isSoftwareAdapter, recommendWasm } from './backend-label';

const swiftshader: BackendProbe = {
  kind: 'webgpu',
  adapter: 'google swiftshader (fallback)',
  shaderF16: false,
};
const realGpu: BackendProbe = { kind: 'webgpu', adapter: 'nvidia ampere', shaderF16: true };
const noGpu: BackendProbe = { kind: 'wasm', reason: 'this browser has no WebGPU', shaderF16: false };

describe('backend badge label', () => {
  it('says pending, or unknown after an error, before the probe answers', () => {
    expect(backendLabel(null, null, null)).toMatchObject({ kind: 'pending', text: 'detecting backend…' });
    expect(backendLabel(null, null, 'boom')).toMatchObject({ kind: 'pending', text: 'backend unknown' });
  });
  it('names a software-emulated adapter as such', () => {
    const l = backendLabel(swiftshader, { used: 'webgpu · google swiftshader (fallback)' }, null);
    expect(l).toMatchObject({ kind: 'webgpu', emulated: true });
    expect(l.text).toContain('swiftshader');
    expect(l.text).toContain('software emulation');
    expect(l.title).toContain('WASM');
  });
  it('does not warn on a real GPU', () => {
    const l = backendLabel(realGpu, { used: 'webgpu · nvidia ampere' }, null);
    expect(l).toEqual({
      kind: 'webgpu',
      text: 'WebGPU · nvidia ampere',
      emulated: false,
      title: 'shader-f16: yes',
    });
  });
  it('follows the device actually used: WASM chosen although WebGPU exists', () => {
    const l = backendLabel(swiftshader, { used: 'wasm' }, null);
    expect(l.kind).toBe('wasm');
    expect(l.text).toMatch(/^WASM · chosen/);
    expect(l.emulated).toBe(false);
  });
  it('shows why WASM when there is no WebGPU', () => {
    expect(backendLabel(noGpu, { used: 'wasm' }, null).text).toBe('WASM · this browser has no WebGPU');
    expect(backendLabel(noGpu, null, null).kind).toBe('wasm');
  });
  it('recognises software rasterisers by name', () => {
    expect(
      ['google swiftshader', 'mesa llvmpipe', 'x (fallback)', 'Microsoft Basic Render Driver'].map(
        isSoftwareAdapter,
      ),
    ).toEqual([true, true, true, true]);
    expect(['nvidia ampere', 'apple m2', 'intel gen-12lp', undefined].map(isSoftwareAdapter)).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });
});

describe('the Models panel backend line', () => {
  it('states a fallback reason once: not again when it is the probe’s own WASM reason', () => {
    const r = 'WebGPU is present but no adapter is available';
    const probe: BackendProbe = { kind: 'wasm', reason: r, shaderF16: false };
    expect(fallbackNote(probe, { used: 'wasm', fallbackReason: r })).toBeNull();
    expect(fallbackNote(probe, { used: 'wasm' })).toBeNull();
    expect(fallbackNote(swiftshader, { used: 'wasm', fallbackReason: 'warm-up failed: boom' })).toBe(
      'warm-up failed: boom',
    );
  });
  it('recommends WASM on a software adapter unless WASM is chosen or already used', () => {
    expect(recommendWasm(swiftshader, null, 'auto')).toBe(true);
    expect(recommendWasm(swiftshader, { used: 'webgpu · google swiftshader (fallback)' }, 'webgpu')).toBe(
      true,
    );
    expect(recommendWasm(swiftshader, null, 'wasm')).toBe(false);
    expect(recommendWasm(swiftshader, { used: 'wasm' }, 'auto')).toBe(false);
    expect(recommendWasm(realGpu, null, 'auto')).toBe(false);
    expect(recommendWasm(noGpu, null, 'auto')).toBe(false);
  });
});
