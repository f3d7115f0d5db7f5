// JSON shape checks shared by every layer (config.json, safetensors headers, tokenizer.json, Hub
// answers, old specs): the one definition of "a JSON object".
// Bottom layer: must never import anything of the project, Node APIs or the DOM.

/** A parsed JSON object (not null, not an array). */
export type JsonObject = Record<string, unknown>;

/** True for a plain JSON object: not null and not an array. */
export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
