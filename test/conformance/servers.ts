// One provider per server kind, all serving the same routes, so that one suite checks every adapter:
//   GET /fast -> 200 "ok"; GET /slow?ms=N -> 200 "ok" after N ms; GET /boom -> 500 (framework error
//   path); GET /version -> the HTTP version the request came in ("1.1", "2.0")
// Each kind names the protocol its callers speak (callers.ts): HTTP/1.1 for node:http and the
// frameworks; h2c (http2.createServer) with node:http2's client; h2 over TLS
// (http2.createSecureServer with allowHTTP1) with undici 8 (allowH2) and node:http2; and HTTP/1.1 over
// TLS to that same server, which must behave as a node:http server does.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createH2cServer, createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { type AdminHandler, createProvider, type Provider, type ProviderOptions } from '@lossless/core';
import { lossless as losslessExpress } from '@lossless/express';
import { lossless as losslessFastify } from '@lossless/fastify';
import express from 'express';
import express4 from 'express4';
import Fastify from 'fastify';
import { TLS } from '../tls.js';
import type { Protocol } from './callers.js';

export interface Started {
  provider: Provider;
  port: number;
}

export type Options = Omit<ProviderOptions, 'server'> & { mountAdmin?: boolean };
export type Kind = (options: Options) => Promise<Started>;

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const msOf = (url: string | undefined): number => Number(new URL(url ?? '/', 'http://x').searchParams.get('ms') ?? 0);

/** The plain handler, the same on node:http and node:http2 (the compat API has the same surface). */
function plainHandler(admin: () => AdminHandler | undefined) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (admin()?.(req, res)) return;
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/fast') res.end('ok');
    else if (path === '/slow') delay(msOf(req.url)).then(() => res.end('ok'));
    else if (path === '/version') res.end(req.httpVersion);
    else if (path === '/boom') {
      res.statusCode = 500;
      res.end('boom');
    } else {
      res.statusCode = 404;
      res.end();
    }
  };
}

function plainKind(
  make: (handler: ReturnType<typeof plainHandler>) => Parameters<typeof createProvider>[0]['server'],
): Kind {
  return async ({ mountAdmin, ...options }) => {
    let provider: Provider | undefined;
    const server = make(plainHandler(() => (mountAdmin ? provider?.adminHandler : undefined)));
    if (server === undefined) throw new Error('no server');
    provider = createProvider({ ...options, server });
    if (mountAdmin) provider.ignorePaths(['/livez', '/readyz', '/startupz', '/status', '/prestop']);
    server.listen(0, '127.0.0.1');
    await provider.start();
    return { provider, port: (server.address() as AddressInfo).port };
  };
}

const nodeHttp = plainKind((handler) => createServer(handler));
// the compat API's request and response stand in for node:http's in the handler
const h2c = plainKind((handler) => createH2cServer(handler as never));
const h2 = plainKind((handler) => createSecureServer({ ...TLS, allowHTTP1: true }, handler as never));

function expressKind(factory: typeof express | typeof express4): Kind {
  return async (options) => {
    const app = factory();
    const provider = losslessExpress(app as never, options);
    app.get('/fast', (_req, res) => {
      res.send('ok');
    });
    app.get('/slow', async (req, res) => {
      await delay(msOf(req.url));
      res.send('ok');
    });
    app.get('/boom', () => {
      throw new Error('boom');
    });
    app.get('/version', (req, res) => {
      res.send(req.httpVersion);
    });
    const server = await provider.listen(0, '127.0.0.1');
    return { provider, port: (server.address() as AddressInfo).port };
  };
}

const fastifyKind: Kind = async (options) => {
  const app = Fastify();
  const provider = losslessFastify(app, options);
  app.get('/fast', async () => 'ok');
  app.get('/slow', async (req) => {
    await delay(msOf(req.url));
    return 'ok';
  });
  app.get('/boom', async () => {
    throw new Error('boom');
  });
  app.get('/version', async (req) => req.raw.httpVersion);
  const address = await provider.listen({ port: 0, host: '127.0.0.1' });
  return { provider, port: address.port };
};

export const KINDS: [string, Kind, Protocol][] = [
  ['node:http', nodeHttp, 'http1'],
  ['express 5', expressKind(express), 'http1'],
  ['express 4', expressKind(express4), 'http1'],
  ['fastify 5', fastifyKind, 'http1'],
  ['node:http2 h2c', h2c, 'h2c'],
  ['node:http2 h2 (TLS)', h2, 'h2'],
  ['node:http2 allowHTTP1, HTTP/1.1 over TLS', h2, 'https1'],
];
