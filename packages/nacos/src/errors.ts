// Coded errors of the Nacos registry (see docs/errors.md).

import { LosslessError } from '@lossless/core';

/** The API a request went through: the v1 HTTP OpenAPI, or the gRPC API of Nacos 2.x and 3.x. */
export type NacosApi = 'HTTP' | 'gRPC';

/**
 * Nacos refused the credentials: the login answered 401/403, or a gRPC request answered 403 with a
 * fresh token. Registration keeps retrying; fix the credentials.
 */
export class NacosAuthError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_NACOS_AUTH';
  readonly status: number;

  constructor(server: string, status: number, detail: string, api: NacosApi = 'HTTP') {
    super('LOSSLESS_ERR_NACOS_AUTH', `Nacos at ${server} refused the credentials (${api} ${status}): ${detail}`);
    this.status = status;
  }
}

/** No Nacos server of the list answered (refused, reset, timed out). */
export class NacosUnavailableError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_NACOS_UNAVAILABLE';
  constructor(servers: readonly string[], cause: unknown) {
    super(
      'LOSSLESS_ERR_NACOS_UNAVAILABLE',
      `no Nacos server answered (${servers.join(', ')}): ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

/**
 * Nacos answered a request with an error: an HTTP status, or over gRPC an error response with its
 * error code (`status`). `method` is the HTTP method, or `gRPC`; `path` the URL path or the request type.
 */
export class NacosRequestError extends LosslessError {
  declare readonly code: 'LOSSLESS_ERR_NACOS_REQUEST';
  readonly status: number;

  constructor(method: string, path: string, status: number, body: string, api: NacosApi = 'HTTP') {
    const hint =
      api === 'HTTP' && (status === 410 || status === 501)
        ? ' (Nacos 3.x: enable nacos.core.api.compatibility.admin.enabled=true for the v1 API, see docs/nacos.md)'
        : '';
    super(
      'LOSSLESS_ERR_NACOS_REQUEST',
      `Nacos ${method} ${path} answered ${api === 'HTTP' ? 'HTTP' : 'error'} ${status}: ${body.slice(0, 200)}${hint}`,
    );
    this.status = status;
  }
}
