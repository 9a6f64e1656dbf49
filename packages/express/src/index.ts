// @lossless/express: one call wires lossless into an express 4 or 5 app. Tracking and the offline
// marker work at the server level (core), so they cover every route and middleware, error handlers
// included; this adapter adds the server creation, the optional admin routes and a listen() that
// resolves once the instance is registered and ready.

import { createServer, type Server } from 'node:http';
import { Provider, type ProviderOptions } from '@lossless/core';
import { ADMIN_PATHS } from '@lossless/core/internal';

/** The subset of an express app this adapter needs (express 4 and 5 both fit). */
export interface ExpressApp {
  (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void;
  use(handler: (req: never, res: never, next: () => void) => void): unknown;
}

export interface LosslessExpressOptions extends Omit<ProviderOptions, 'server'> {
  /** Also serve /livez, /readyz, /startupz, /status and POST /prestop on the app itself. Default false. */
  readonly mountAdmin?: boolean;
}

export class ExpressProvider extends Provider {
  readonly app: ExpressApp;

  constructor(app: ExpressApp, options: LosslessExpressOptions) {
    const { mountAdmin, ...rest } = options;
    super(rest);
    this.app = app;
    if (mountAdmin === true) {
      const handler = this.adminHandler;
      app.use((req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, next: () => void) => {
        if (!handler(req, res)) next();
      });
      this.ignorePaths(ADMIN_PATHS);
    }
  }

  /**
   * Creates the HTTP server for the app, listens, and resolves once the instance is warmed up,
   * registered and ready. Rejects when a warm-up hook fails or the server cannot listen.
   */
  async listen(port: number, host?: string): Promise<Server> {
    const server = createServer(this.app);
    this.attach(server);
    server.listen(port, host);
    await this.start();
    return server;
  }
}

/** Wires lossless into `app`. Call it before adding routes when `mountAdmin` is set. */
export function lossless(app: ExpressApp, options: LosslessExpressOptions): ExpressProvider {
  return new ExpressProvider(app, options);
}
