import { describe, expect, it } from 'vitest';
import { CancelledError, isAbort } from './abort';
import { abortError, HubError } from '../hub/hub-api';

describe('isAbort', () => {
  it('recognises every cancellation the layers raise', () => {
    expect(isAbort(new CancelledError())).toBe(true);
    expect(isAbort(new DOMException('cancelled', 'AbortError'))).toBe(true);
    const ctl = new AbortController();
    ctl.abort();
    expect(isAbort(ctl.signal.reason)).toBe(true);
    expect(isAbort(abortError())).toBe(true);
  });

  it('is false for failures that are not cancellations', () => {
    expect(isAbort(new Error('cancelled'))).toBe(false);
    expect(isAbort(new HubError('network', 'offline'))).toBe(false);
    expect(isAbort('AbortError')).toBe(false);
    expect(isAbort(null)).toBe(false);
  });

  it("keeps the user-visible message 'cancelled' and the platform's name", () => {
    const e = new CancelledError();
    expect(e.message).toBe('cancelled');
    expect(e.name).toBe('AbortError');
    expect(e).toBeInstanceOf(Error);
  });
});
