// The admin endpoints Kubernetes and operators talk to: /livez, /readyz, /startupz, /status and
// /prestop. Served on a separate admin server by default, or mounted on the main server through
// `provider.adminHandler`. Mutating calls are refused unless they come from loopback or carry the token;
// GET /prestop (Kubernetes' httpGet preStop hook cannot POST) needs the token whatever the caller.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MetricsSource } from '../options.js';

export interface AdminTarget {
  readonly livez: () => Probe;
  readonly readyz: () => Probe;
  readonly startupz: () => Probe;
  readonly status: () => object;
  /** Starts the drain (or joins the one under way) and resolves when it is over. */
  readonly prestop: (method: string) => Promise<object>;
  /** Serves GET /metrics when given. */
  readonly metrics?: MetricsSource | undefined;
}

export interface Probe {
  readonly ok: boolean;
  readonly body: object;
}

export type AdminHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export const ADMIN_PATHS: readonly string[] = ['/livez', '/readyz', '/startupz', '/status', '/prestop', '/metrics'];

/** The largest request body the admin endpoints accept, in bytes. */
const MAX_BODY = 1024;

export function createAdminHandler(target: AdminTarget, token: string | undefined): AdminHandler {
  const tokenDigest = token === undefined ? undefined : sha256(token);

  return (req, res) => {
    const path = pathOf(req.url);
    switch (path) {
      case '/livez':
      case '/readyz':
      case '/startupz': {
        if (!allowMethods(req, res, ['GET', 'HEAD'])) return true;
        const probe = path === '/livez' ? target.livez() : path === '/readyz' ? target.readyz() : target.startupz();
        sendJson(req, res, probe.ok ? 200 : 503, probe.body);
        return true;
      }
      case '/status':
        if (!allowMethods(req, res, ['GET', 'HEAD'])) return true;
        sendJson(req, res, 200, target.status());
        return true;
      case '/metrics': {
        const source = target.metrics;
        if (source === undefined) return false;
        if (!allowMethods(req, res, ['GET', 'HEAD'])) return true;
        Promise.resolve()
          .then(() => source.metrics())
          .then(
            (text) => {
              res.writeHead(200, { 'content-type': source.contentType, 'cache-control': 'no-store' });
              res.end(req.method === 'HEAD' ? undefined : text);
            },
            (error: Error) =>
              sendJson(req, res, 500, { error: 'LOSSLESS_ERR_METRICS', message: `metrics failed: ${error.message}` }),
          );
        return true;
      }
      case '/prestop': {
        // GET exists only for Kubernetes' httpGet hook: anything that can make a process in the pod
        // fetch a URL can send a GET, so a GET drains only with the token, even from loopback, and
        // only when a token is configured (else it stays a 405, as a mutating GET should)
        if (!allowMethods(req, res, tokenDigest === undefined ? ['POST'] : ['GET', 'POST'])) return true;
        const get = req.method === 'GET';
        if (!(carriesToken(req, tokenDigest) || (!get && isLoopback(req.socket.remoteAddress)))) {
          sendJson(req, res, 401, {
            error: 'LOSSLESS_ERR_ADMIN_UNAUTHORIZED',
            message: `${get ? 'GET /prestop needs' : 'POST /prestop needs a loopback caller or'} the admin token (Authorization: Bearer <token> or X-Lossless-Token: <token>)`,
          });
          return true;
        }
        readBounded(req).then(
          () => {
            target.prestop(req.method ?? 'POST').then(
              (summary) => sendJson(req, res, 200, summary),
              (error: Error) => sendJson(req, res, 500, { error: 'LOSSLESS_ERR_PRESTOP', message: error.message }),
            );
          },
          () =>
            sendJson(req, res, 413, {
              error: 'LOSSLESS_ERR_ADMIN_BODY_TOO_LARGE',
              message: `request bodies are limited to ${MAX_BODY} bytes`,
            }),
        );
        return true;
      }
      default:
        return false;
    }
  };
}

/** Answers 404 for everything the admin handler does not know (used by the dedicated admin server). */
export function notFound(req: IncomingMessage, res: ServerResponse): void {
  sendJson(req, res, 404, {
    error: 'LOSSLESS_ERR_ADMIN_NOT_FOUND',
    message: `no admin endpoint at ${pathOf(req.url)}`,
  });
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function allowMethods(req: IncomingMessage, res: ServerResponse, methods: readonly string[]): boolean {
  if (methods.includes(req.method ?? '')) return true;
  res.setHeader('allow', methods.join(', '));
  sendJson(req, res, 405, {
    error: 'LOSSLESS_ERR_ADMIN_METHOD',
    message: `${req.method} is not allowed here; use ${methods.join(' or ')}`,
  });
  return false;
}

/** Whether the request carries the admin token, as `Authorization: Bearer <token>` or `X-Lossless-Token: <token>`. */
function carriesToken(req: IncomingMessage, tokenDigest: Buffer | undefined): boolean {
  if (tokenDigest === undefined) return false;
  const header = req.headers.authorization;
  // the scheme name is case-insensitive (RFC 9110)
  const bearer = typeof header === 'string' && /^bearer /i.test(header) ? header.slice(7).trim() : undefined;
  const plain = req.headers['x-lossless-token'];
  const given = [bearer, typeof plain === 'string' ? plain.trim() : undefined];
  // compare digests so the comparison takes the same time whatever the length of the guess
  return given.some((value) => value !== undefined && timingSafeEqual(sha256(value), tokenDigest));
}

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Reads and discards the body; rejects when it is larger than MAX_BODY. */
function readBounded(req: IncomingMessage): Promise<void> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY) {
    req.resume();
    return Promise.reject(new Error('too large'));
  }
  return new Promise((resolve, reject) => {
    let seen = 0;
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > MAX_BODY) {
        req.removeAllListeners('data');
        req.resume();
        reject(new Error('too large'));
      }
    });
    req.on('end', () => resolve());
    req.on('error', reject);
  });
}

function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: object): void {
  if (res.headersSent || res.destroyed) return;
  const text = `${JSON.stringify(body)}\n`;
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.setHeader('cache-control', 'no-store');
  res.end(req.method === 'HEAD' ? undefined : text);
}
