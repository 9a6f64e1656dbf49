// @lossless/fastify: lossless for fastify 5 apps, as a fastify plugin (`app.register(losslessPlugin,
// options)`, then `app.lossless`) or one call (`lossless(app, options)`). Tracking and the offline
// marker work on fastify's own server (core). `app.close()` (what close-with-grace and fastify-cli
// call) goes through the drain first: out of the registry, marked answers, the quiet window; then
// fastify's own close runs (its preClose/onClose hooks, forceCloseConnections for idle keep-alive
// sockets). Without that, fastify's close answers 503 from its first moment while the instance is
// still registered, and leaves it registered and heartbeating after the server stopped.

import type { AddressInfo } from 'node:net';
import { type DrainSummary, Provider, type ProviderOptions } from '@lossless/core';
import { ADMIN_PATHS } from '@lossless/core/internal';
import type { FastifyInstance, FastifyListenOptions, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';

export interface LosslessFastifyOptions extends Omit<ProviderOptions, 'server'> {
  /** Also serve /livez, /readyz, /startupz, /status and POST /prestop as fastify routes. Default false. */
  readonly mountAdmin?: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The lossless provider of this app (registered by `losslessPlugin`). */
    lossless: FastifyProvider;
  }
}

type Close = FastifyInstance['close'];

export class FastifyProvider extends Provider {
  readonly app: FastifyInstance;

  constructor(app: FastifyInstance, options: LosslessFastifyOptions) {
    const { mountAdmin, ...rest } = options;
    super(rest);
    this.app = app;
    // fastify's own close, kept for the end of the drain; app.close() becomes a drain
    const close = app.close.bind(app) as () => Promise<undefined>;
    let closed: Promise<unknown> | undefined;
    const closeOnce = (): Promise<unknown> => {
      closed ??= close();
      return closed;
    };
    this.attach(app.server, async () => {
      await closeOnce();
    });
    app.close = ((callback?: (error?: Error) => void) => {
      // an app that never listened has nothing to drain
      const done = this.state === 'starting' && !app.server.listening ? closeOnce() : this.#drainByClose();
      if (typeof callback === 'function') {
        done.then(
          () => callback(),
          (error: Error) => callback(error),
        );
        return undefined;
      }
      return done.then(() => undefined);
    }) as Close;
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

  /** The drain started (or joined) by app.close(): its caller owns the process, so no exit. */
  #drainByClose(): Promise<DrainSummary> {
    return this.drain({ trigger: 'api', reason: 'app.close() called', exit: false });
  }
}

/** Wires lossless into `app` (before `app.listen()`, and before `app.ready()` when `mountAdmin` is set). */
export function lossless(app: FastifyInstance, options: LosslessFastifyOptions): FastifyProvider {
  return new FastifyProvider(app, options);
}

/**
 * lossless as a fastify plugin: `await app.register(losslessPlugin, options)` decorates the app with
 * `app.lossless` (the provider), which starts (warm-up hooks, registration) once the app listens;
 * `await app.lossless.start()` resolves when it is ready. `app.close()` drains.
 */
export const losslessPlugin: FastifyPluginAsync<LosslessFastifyOptions> = fp(
  async (app: FastifyInstance, options: LosslessFastifyOptions) => {
    const provider = new FastifyProvider(app, options);
    app.decorate('lossless', provider);
    app.addHook('onListen', async () => {
      // not awaited: listen() must not wait for a registry that may be down; start() logs its own
      // failures and keeps retrying the registration, and /readyz says why it is not ready
      provider.start().catch(() => {});
    });
  },
  { fastify: '5.x', name: '@lossless/fastify' },
);

export default losslessPlugin;
