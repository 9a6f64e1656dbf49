// Coded errors of the Nacos registry (see docs/errors.md).

import { LosslessError } from '@lossless/core';

/** Nacos refused the credentials (login answered 401/403). Registration keeps retrying; fix the credentials. */
export class NacosAuthError extends LosslessError {
  readonly status: number;

  constructor(server: string, status: number, detail: string) {
    super('LOSSLESS_ERR_NACOS_AUTH', `Nacos at ${server} refused the credentials (HTTP ${status}): ${detail}`);
    this.status = status;
  }
}

/** No Nacos server of the list answered (refused, reset, timed out). */
export class NacosUnavailableError extends LosslessError {
  constructor(servers: readonly string[], cause: unknown) {
    super(
      'LOSSLESS_ERR_NACOS_UNAVAILABLE',
      `no Nacos server answered (${servers.join(', ')}): ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

/** Nacos answered a request with an error status. */
export class NacosRequestError extends LosslessError {
  readonly status: number;

  constructor(method: string, path: string, status: number, body: string) {
    const hint =
      status === 410 || status === 501
        ? ' (Nacos 3.x: enable nacos.core.api.compatibility.admin.enabled=true for the v1 API, see docs/nacos.md)'
        : '';
    super(
      'LOSSLESS_ERR_NACOS_REQUEST',
      `Nacos ${method} ${path} answered HTTP ${status}: ${body.slice(0, 200)}${hint}`,
    );
    this.status = status;
  }
}
