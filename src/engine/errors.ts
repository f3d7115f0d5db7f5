// Typed engine failures: every load or shape problem becomes an EngineError with a code the UI/CLI can
// switch on and details naming exactly what failed (tensor, field, file).
// Must never depend on anything but the language: no ORT, DOM or Node imports.

export type EngineErrorCode =
  /** the file ends before the header or a tensor's bytes */
  | 'truncated_file'
  /** the safetensors header length is absurd or runs past the end of the file */
  | 'header_too_large'
  /** the header or a JSON file is not valid JSON / not the expected structure */
  | 'bad_header'
  /** a tensor's data offsets fall outside the data region, or are reversed */
  | 'offset_out_of_range'
  /** two tensors' byte ranges overlap */
  | 'overlapping_tensors'
  /** the tensors do not cover a safetensors data region exactly: a gap between them, or bytes after the last */
  | 'uncovered_bytes'
  /** a dtype we do not know, or refuse for this use */
  | 'unknown_dtype'
  /** a tensor's shape disagrees with its byte span, with the config or with another input */
  | 'shape_mismatch'
  /** a required tensor is absent */
  | 'missing_tensor'
  /** config.json names a model_type the engine does not build */
  | 'unsupported_architecture'
  /** config.json carries a field value the engine does not support */
  | 'unsupported_config'
  /** a LoRA adapter does not fit the base model */
  | 'adapter_mismatch'
  /** config.json lacks a required field or has the wrong type for it */
  | 'bad_config'
  /** a JSON file (config, index, adapter config) does not parse */
  | 'bad_json'
  /** tokenizer.json / tokenizer_config.json is malformed (model type, vocab, merges, added tokens) */
  | 'bad_tokenizer'
  /** a file a model folder needs is absent */
  | 'missing_file'
  /** a forward call's inputs are inconsistent (ragged rows, wrong mask length, bad patch sizes…) */
  | 'bad_input'
  /** a file is larger than its reader accepts (a JSON file past its limit) */
  | 'file_too_large'
  /** a network read failed (HTTP status, no range support) */
  | 'fetch_failed'
  /** ORT could not allocate a session's memory (std::bad_alloc, a heap that cannot grow) */
  | 'out_of_memory';

/** Free-form context; keep keys stable (`tensor`, `field`, `file`, `expected`, `got`, `value`). */
export type EngineErrorDetails = Record<string, unknown>;

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  readonly details: EngineErrorDetails;

  constructor(code: EngineErrorCode, message: string, details: EngineErrorDetails = {}) {
    super(message);
    this.name = 'EngineError';
    this.code = code;
    this.details = details;
  }
}

export function isEngineError(e: unknown, code?: EngineErrorCode): e is EngineError {
  return e instanceof EngineError && (code === undefined || e.code === code);
}
