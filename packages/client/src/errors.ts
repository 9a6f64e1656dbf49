// Coded errors of the client (see docs/errors.md). Each names the service and what was tried.

import { LosslessError } from '@lossless/core';

/** The registry lists no usable instance of the service (or all were tried for this request). */
export class NoInstanceError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_NO_INSTANCE';
  readonly service: string;
  readonly tried: readonly string[];

  constructor(service: string, tried: readonly string[]) {
    super(
      'LOSSLESS_ERR_NO_INSTANCE',
      tried.length === 0
        ? `no usable instance of service "${service}" in the registry`
        : `no other usable instance of service "${service}" (tried ${tried.join(', ')})`,
    );
    this.service = service;
    this.tried = tried;
  }
}

/** Every instance of the service has an open circuit. */
export class AllCircuitsOpenError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_ALL_CIRCUITS_OPEN';
  readonly service: string;
  readonly instances: readonly string[];

  constructor(service: string, instances: readonly string[]) {
    super(
      'LOSSLESS_ERR_ALL_CIRCUITS_OPEN',
      `every instance of service "${service}" has an open circuit (${instances.join(', ')}); retry after the breaker's reset timeout or fall back`,
    );
    this.service = service;
    this.instances = instances;
  }
}

/** The circuit of this instance is open: the request was not sent. */
export class CircuitOpenError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_CIRCUIT_OPEN';
  readonly origin: string;

  constructor(origin: string) {
    super('LOSSLESS_ERR_CIRCUIT_OPEN', `the circuit of ${origin} is open: request not sent`);
    this.origin = origin;
  }
}

/** A retry was needed but the retry budget (a share of all requests) is spent. */
export class RetryBudgetExhaustedError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_RETRY_BUDGET';
  readonly service: string;
  readonly tried: readonly string[];

  constructor(service: string, tried: readonly string[], cause: unknown) {
    super(
      'LOSSLESS_ERR_RETRY_BUDGET',
      `retry budget exhausted for service "${service}" after trying ${tried.join(', ') || 'nothing'}: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
    this.service = service;
    this.tried = tried;
  }
}

/** The request's overall timeout passed, retries included. */
export class RequestTimeoutError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_TIMEOUT';
  readonly service: string;
  readonly tried: readonly string[];

  constructor(service: string, timeoutMs: number, tried: readonly string[]) {
    super(
      'LOSSLESS_ERR_TIMEOUT',
      `request to service "${service}" did not finish within ${timeoutMs} ms (tried ${tried.join(', ') || 'nothing'})`,
    );
    this.service = service;
    this.tried = tried;
  }
}
