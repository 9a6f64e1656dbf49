// Every error lossless throws or reports carries a stable `code` (LOSSLESS_ERR_*), listed with its
// cause and remedy in docs/errors.md. Match on `code`, not on the class or the message.

export class LosslessError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An option or argument was rejected before anything started. */
export class InvalidOptionError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_INVALID_OPTION';
  readonly option: string;
  readonly value: unknown;
  /** What was expected ("expected a number of milliseconds >= 0 ..."). */
  readonly expectation: string;

  constructor(option: string, value: unknown, expectation: string) {
    super('LOSSLESS_ERR_INVALID_OPTION', `Invalid option "${option}": ${expectation}, got ${describe(value)}`);
    this.option = option;
    this.value = value;
    this.expectation = expectation;
  }
}

/** A registry URL could not be parsed, or its scheme has no registry. */
export class InvalidRegistryUrlError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_INVALID_REGISTRY_URL';
  readonly url: string;
  readonly reason: string;

  constructor(url: string, reason: string) {
    super('LOSSLESS_ERR_INVALID_REGISTRY_URL', `Invalid registry URL "${redactUrl(url)}": ${reason}`);
    this.url = redactUrl(url);
    this.reason = reason;
  }
}

/** A lifecycle transition that the state machine forbids was attempted (a bug, never expected). */
export class IllegalTransitionError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_ILLEGAL_TRANSITION';
  readonly from: string;
  readonly to: string;

  constructor(from: string, to: string) {
    super('LOSSLESS_ERR_ILLEGAL_TRANSITION', `Illegal lifecycle transition from "${from}" to "${to}"`);
    this.from = from;
    this.to = to;
  }
}

/** A warm-up hook rejected: the instance stays unregistered and not ready. */
export class WarmupFailedError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_WARMUP_FAILED';
  readonly hook: string;

  constructor(hook: string, cause: unknown) {
    super('LOSSLESS_ERR_WARMUP_FAILED', `Warm-up hook "${hook}" failed: ${messageOf(cause)}`, { cause });
    this.hook = hook;
  }
}

/** A warm-up hook did not settle within its timeout: the instance stays unregistered and not ready. */
export class WarmupTimeoutError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_WARMUP_TIMEOUT';
  readonly hook: string;
  readonly timeoutMs: number;

  constructor(hook: string, timeoutMs: number) {
    super('LOSSLESS_ERR_WARMUP_TIMEOUT', `Warm-up hook "${hook}" did not finish within ${timeoutMs} ms`);
    this.hook = hook;
    this.timeoutMs = timeoutMs;
  }
}

/** A lifecycle hook (onReady, preDrain, onClose) threw or timed out. Logged; the lifecycle goes on. */
export class HookFailedError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_HOOK_FAILED';
  readonly phase: string;
  readonly hook: string;

  constructor(phase: string, hook: string, cause: unknown) {
    super('LOSSLESS_ERR_HOOK_FAILED', `${phase} hook "${hook}" failed: ${messageOf(cause)}`, { cause });
    this.phase = phase;
    this.hook = hook;
  }
}

/** start() was interrupted because a drain began before the instance was ready. */
export class StartAbortedError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_START_ABORTED';
  readonly state: string;

  constructor(state: string) {
    super('LOSSLESS_ERR_START_ABORTED', `Start was aborted by a drain while ${state}`);
    this.state = state;
  }
}

/** start() was called without a server to track, or twice. */
export class ProviderStateError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_PROVIDER_STATE';
  constructor(message: string) {
    super('LOSSLESS_ERR_PROVIDER_STATE', message);
  }
}

/** The server or the admin server could not listen (port in use, permission, bad address). */
export class ListenFailedError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_LISTEN';
  readonly what: string;

  constructor(what: string, cause: unknown, hint?: string) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    super(
      'LOSSLESS_ERR_LISTEN',
      `${what} could not listen: ${code ?? messageOf(cause)}${hint === undefined ? '' : `; ${hint}`}`,
      { cause },
    );
    this.what = what;
  }
}

/** A registry operation (register, deregister, read-back, list) failed. */
export class RegistryError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_REGISTRY';
  readonly operation: string;
  readonly service: string;

  constructor(operation: string, service: string, cause: unknown, registry = 'registry') {
    super('LOSSLESS_ERR_REGISTRY', `${registry} ${operation} for service "${service}" failed: ${messageOf(cause)}`, {
      cause,
    });
    this.operation = operation;
    this.service = service;
  }
}

/** A registry operation did not finish within its timeout. */
export class RegistryTimeoutError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_REGISTRY_TIMEOUT';
  readonly operation: string;
  readonly service: string;

  constructor(operation: string, service: string, timeoutMs: number) {
    super(
      'LOSSLESS_ERR_REGISTRY_TIMEOUT',
      `registry ${operation} for service "${service}" did not finish within ${timeoutMs} ms`,
    );
    this.operation = operation;
    this.service = service;
  }
}

/** The drain reached its maximum with requests still in flight; those were cut. */
export class DrainTimeoutError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_DRAIN_TIMEOUT';
  readonly inFlight: number;

  constructor(maxDrainMs: number, inFlight: number) {
    super(
      'LOSSLESS_ERR_DRAIN_TIMEOUT',
      `Drain reached its maximum of ${maxDrainMs} ms with ${inFlight} request(s) still in flight`,
    );
    this.inFlight = inFlight;
  }
}

/** A second termination signal arrived during a drain: remaining requests were cut at once. */
export class ForcedShutdownError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_FORCED_SHUTDOWN';
  readonly inFlight: number;

  constructor(signal: string, inFlight: number) {
    super(
      'LOSSLESS_ERR_FORCED_SHUTDOWN',
      `Second ${signal} during the drain: closing now with ${inFlight} request(s) still in flight`,
    );
    this.inFlight = inFlight;
  }
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    // a BigInt inside, a cycle, or an object with no toString (null prototype): describe without throwing
    return Object.prototype.toString.call(value);
  }
}

/** Hide the password of a URL so that errors and logs never carry credentials. */
export function redactUrl(url: string): string {
  return url
    .replace(/(\/\/[^:/@]*:)[^/]*@/, '$1***@') // user:password@ (up to the last @ before the path)
    .replace(/([?&](?:password|token|secret|secretKey|accessKey)=)[^&#]*/gi, '$1***');
}
