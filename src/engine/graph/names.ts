// Stable input/output names of the decoder graph: the one place they are spelled, shared by the builder,
// the session wrapper and anything that feeds or fetches by name. Names must never change once chosen
// (saved benchmarks and the worker protocol refer to them).

/** int64 [B, T] */
export const INPUT_IDS = 'input_ids';
/** float32 [B, P+T]: 1 = attend, 0 = padding */
export const ATTENTION_MASK = 'attention_mask';
/** int64 [B, T]: rows of the RoPE tables to use */
export const POSITION_IDS = 'position_ids';
/** float32 [B]: multiplies every LoRA branch per row (only in graphs built with an adapter) */
export const LORA_SCALE = 'lora_scale';
/** int64 [1]: first position whose logits are computed; 0 = all, -1 = only the last */
export const LOGITS_START = 'logits_start';
/** float32 [B, T', vocab] */
export const LOGITS = 'logits';

/** float32 [B, kvHeads, P, headDim], post-RoPE */
export const pastKey = (l: number): string => `past.${l}.key`;
export const pastValue = (l: number): string => `past.${l}.value`;
/** int64 [1]: real cache length P (graphs built with `kvAppend`, whose past is a capacity buffer) */
export const PAST_LENGTH = 'past_length';
/** float32 [B, kvHeads, T, headDim], post-RoPE: the new slots only (graphs built with `kvAppend`) */
export const newKey = (l: number): string => `kv_new.${l}.key`;
export const newValue = (l: number): string => `kv_new.${l}.value`;
/** float32 [B, kvHeads, P+T, headDim], post-RoPE */
export const presentKey = (l: number): string => `present.${l}.key`;
export const presentValue = (l: number): string => `present.${l}.value`;

/** float32 [B|1, T|1, 1]; residual site l ∈ [0, numLayers] */
export const residPatchMask = (l: number): string => `resid_patch_mask.${l}`;
/** float32 [B|1, T|1, hidden] */
export const residPatch = (l: number): string => `resid_patch.${l}`;
/** float32 [B|1, T|1, 1]; layer l */
export const kvPatchMask = (l: number): string => `kv_patch_mask.${l}`;
/** float32 [B|1, T|1, kvHeads·headDim], pre-RoPE (and pre Qwen3 k_norm) */
export const kPatch = (l: number): string => `k_patch.${l}`;
export const vPatch = (l: number): string => `v_patch.${l}`;

/** float32 [B, T, hidden]: the residual stream entering layer l, before its patch */
export const residTap = (l: number): string => `resid.${l}`;
/** float32 [B, T, kvHeads·headDim]: k_proj / v_proj output before its patch, k_norm and RoPE */
export const kTap = (l: number): string => `k.${l}`;
export const vTap = (l: number): string => `v.${l}`;
/** float32 [B, heads, T, P+T]: attention probabilities (0 where masked) */
export const attnTap = (l: number): string => `attn.${l}`;
