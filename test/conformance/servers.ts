// One provider per server kind, all serving the same routes, so that one suite checks every adapter:
//   GET /fast -> 200 "ok"; GET /slow?ms=N -> 200 "ok" after N ms; GET /boom -> 500 (framework error path)

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProvider, type Provider, type ProviderOptions } from '@lossless/core';
import { lossless as losslessExpress } from '@lossless/express';
import { lossless as losslessFastify } from '@lossless/fastify';
import express from 'express';
import express4 from 'express4';
import Fastify from 'fastify';

export interface Started {
  provider: Provider;
  port: number;
}

export type Options = Omit<ProviderOptions, 'server'> & { mountAdmin?: boolean };
export type Kind = (options: Options) => Promise<Started>;

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const msOf = (url: string | undefined): number => Number(new URL(url ?? '/', 'http://x').searchParams.get('ms') ?? 0);

const nodeHttp: Kind = async ({ mountAdmin, ...options }) => {
  let provider: Provider | undefined;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (mountAdmin && provider?.adminHandler(req, res)) return;
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/fast') res.end('ok');
    else if (path === '/slow') delay(msOf(req.url)).then(() => res.end('ok'));
    else if (path === '/boom') {
      res.statusCode = 500;
      res.end('boom');
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  provider = createProvider({ ...options, server });
  if (mountAdmin) provider.ignorePaths(['/livez', '/readyz', '/startupz', '/status', '/prestop']);
  server.listen(0, '127.0.0.1');
  await provider.start();
  return { provider, port: (server.address() as AddressInfo).port };
};

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
  const address = await provider.listen({ port: 0, host: '127.0.0.1' });
  return { provider, port: address.port };
};

export const KINDS: [string, Kind][] = [
  ['node:http', nodeHttp],
  ['express 5', expressKind(express)],
  ['express 4', expressKind(express4)],
  ['fastify 5', fastifyKind],
];
