// Error helpers shared by every layer: the one way to turn a caught value into text for a message.
// Bottom layer: must never import anything of the project, Node APIs or the DOM.

/** A caught value's message: `e.message` for an Error, else `String(e)`. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
