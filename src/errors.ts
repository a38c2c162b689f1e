/**
 * Typed errors. Every error the runtime raises on bad input is one of these, carries a stable
 * `code`, and names the file / tensor / field involved in its message.
 */
export class QwenRtError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A checkpoint file is malformed, truncated or inconsistent (names file and tensor). */
export class CheckpointError extends QwenRtError {
  readonly file?: string;
  readonly tensor?: string;
  /** All problems found, when several were collected before throwing. */
  readonly problems: string[];
  constructor(message: string, opts: { file?: string; tensor?: string; problems?: string[]; cause?: unknown } = {}) {
    super('E_CHECKPOINT', message, { cause: opts.cause });
    this.file = opts.file;
    this.tensor = opts.tensor;
    this.problems = opts.problems ?? [message];
  }
}

/** config.json / generation_config.json / quantize_config.json field missing or invalid. */
export class ConfigError extends QwenRtError {
  readonly file: string;
  readonly field: string;
  constructor(file: string, field: string, expected: string, got: unknown) {
    super('E_CONFIG', `${file}: field "${field}" must be ${expected}, got ${JSON.stringify(got)}`);
    this.file = file;
    this.field = field;
  }
}

/** Tokenizer input or vocabulary problems (disallowed special text, bad ranks line, bad id). */
export class TokenizerError extends QwenRtError {
  constructor(message: string) {
    super('E_TOKENIZER', message);
  }
}

/** Invalid argument to a public API call (names the option). */
export class ArgumentError extends QwenRtError {
  constructor(message: string) {
    super('E_ARGUMENT', message);
  }
}

/** A backend could not be created or failed (no adapter, limits, out of memory). */
export class BackendError extends QwenRtError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_BACKEND', message, options);
  }
}

/** The GPU device was lost; the engine can continue on another backend. */
export class DeviceLostError extends BackendError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    (this as { code: string }).code = 'E_DEVICE_LOST';
  }
}

/**
 * The model would not fit in the memory available: estimated before any weight is uploaded, so a
 * load fails early with the numbers instead of dying halfway (bytes).
 */
export class InsufficientMemoryError extends BackendError {
  readonly neededBytes: number;
  readonly availableBytes: number;
  constructor(message: string, neededBytes: number, availableBytes: number) {
    super(message);
    (this as { code: string }).code = 'E_MEMORY';
    this.neededBytes = neededBytes;
    this.availableBytes = availableBytes;
  }
}

/** A request was aborted through its AbortSignal. */
export class AbortError extends QwenRtError {
  constructor(message = 'aborted') {
    super('E_ABORTED', message);
  }
}
