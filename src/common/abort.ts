// Cancellation for every layer: the one error a cancelled operation rejects with, and the one test for
// "was this a cancellation?" (the worker answers 'cancelled' for it, the UI shows no error for it).
// Bottom layer: must never import anything of the project, Node APIs or the DOM.

/**
 * What a cancelled operation rejects with. Its name is 'AbortError', the platform's name for an
 * aborted fetch (a DOMException), so code that knows only that convention sees a cancellation too.
 */
export class CancelledError extends Error {
  override name = 'AbortError';
  constructor(message = 'cancelled') {
    super(message);
  }
}

/**
 * True for every cancellation: a `CancelledError` (or a subclass such as the sweep's, which carries
 * the cells done so far), anything named 'AbortError' (an aborted fetch, an AbortSignal's default
 * reason), and the Hub's `HubError` with reason 'aborted' (a download cut by its signal).
 */
export function isAbort(e: unknown): boolean {
  if (e instanceof CancelledError) return true;
  if (typeof e !== 'object' || e === null) return false;
  const { name, reason } = e as { name?: unknown; reason?: unknown };
  return name === 'AbortError' || (name === 'HubError' && reason === 'aborted');
}
