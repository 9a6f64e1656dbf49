// @lossless/fastify: one call wires lossless into a fastify 5 app. Tracking and the offline marker
// work on fastify's own server (core), and the end of the drain is fastify's own close(): its
// preClose/onClose hooks run, return503OnClosing answers stragglers, and forceCloseConnections
// ('idle' by default) closes the idle keep-alive sockets, only once the drain is over.

import type { AddressInfo } from 'node:net';
import { ADMIN_PATHS, Provider, type ProviderOptions } from '@lossless/core';
import type { FastifyInstance, FastifyListenOptions } from 'fastify';

export interface LosslessFastifyOptions extends Omit<ProviderOptions, 'server'> {
  /** Also serve /livez, /readyz, /startupz, /status and POST /prestop as fastify routes. Default false. */
  readonly mountAdmin?: boolean;
}

export class FastifyProvider extends Provider {
  readonly app: FastifyInstance;

  constructor(app: FastifyInstance, options: LosslessFastifyOptions) {
    const { mountAdmin, ...rest } = options;
    super(rest);
    this.app = app;
    let closing = false;
    app.addHook('preClose', (done) => {
      closing = true;
      done();
    });
    this.attach(app.server, async () => {
      if (!closing) await app.close();
    });
    if (mountAdmin === true) {
      const handler = this.adminHandler;
      for (const url of ADMIN_PATHS) {
        if (url === '/metrics' && this.options.metrics === undefined) continue;
        app.route({
          method: url === '/prestop' ? ['POST'] : ['GET', 'HEAD'],
          url,
          exposeHeadRoute: false,
          handler: (request, reply) => {
            reply.hijack();
            handler(request.raw, reply.raw);
          },
        });
      }
      this.ignorePaths(ADMIN_PATHS);
    }
  }

  /**
   * `app.listen(options)`, then resolves once the instance is warmed up, registered and ready.
   * Rejects when a warm-up hook fails or the server cannot listen.
   */
  async listen(options: FastifyListenOptions): Promise<AddressInfo> {
    await this.app.listen(options);
    await this.start();
    return this.app.server.address() as AddressInfo;
  }
}

/** Wires lossless into `app` (before `app.listen()`, and before `app.ready()` when `mountAdmin` is set). */
export function lossless(app: FastifyInstance, options: LosslessFastifyOptions): FastifyProvider {
  return new FastifyProvider(app, options);
}
