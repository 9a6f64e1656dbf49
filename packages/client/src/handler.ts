// undici has two handler interfaces: the legacy callbacks (onConnect, onHeaders, onData, onComplete,
// onError, and onRequestSent, which tells whether the request was written) and the newer controller
// API (onRequestStart, onResponseStart...). The interceptors speak the legacy one, which undici's
// own `request` and `fetch` use, and adapt a newer-style handler to it.

import { type Dispatcher, util } from 'undici';

export interface LegacyHandler {
  onConnect?(abort: (err?: Error) => void, context?: object): void;
  onRequestSent?(): void;
  onBodySent?(chunk: unknown): void;
  onHeaders?(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  onComplete?(trailers: Buffer[] | null): void;
  onError?(error: Error): void;
  onUpgrade?(status: number, raw: Buffer[], socket: unknown): void;
}

interface ControllerHandler {
  onRequestStart?(controller: object, context: object): void;
  onResponseStart?(controller: object, status: number, headers: Record<string, unknown>, statusText: string): void;
  onResponseData?(controller: object, chunk: Buffer): void;
  onResponseEnd?(controller: object, trailers: Record<string, unknown>): void;
  onResponseError?(controller: object, error: Error): void;
  onRequestUpgrade?(controller: object, status: number, headers: Record<string, unknown>, socket: unknown): void;
}

export function toLegacy(handler: Dispatcher.DispatchHandler): LegacyHandler {
  const h = handler as ControllerHandler & LegacyHandler;
  // undici's compose() wraps every handler it passes to an interceptor in a WrapHandler, which has
  // both interfaces: use its legacy side as is rather than convert headers twice per layer
  if (typeof h.onRequestStart !== 'function' || typeof h.onHeaders === 'function') return h;
  let abortFn: ((err?: Error) => void) | undefined;
  let resumeFn: (() => void) | undefined;
  const controller = {
    paused: false,
    aborted: false,
    reason: null as Error | null,
    abort(reason?: Error) {
      controller.aborted = true;
      controller.reason = reason ?? null;
      abortFn?.(reason);
    },
    pause() {
      controller.paused = true;
    },
    resume() {
      if (!controller.paused) return;
      controller.paused = false;
      resumeFn?.();
    },
  };
  const headersOf = (raw: Buffer[] | null | undefined): Record<string, unknown> =>
    raw ? (util.parseHeaders(raw) as Record<string, unknown>) : {};
  return {
    onConnect(abort, context) {
      abortFn = abort;
      h.onRequestStart?.(controller, context ?? {});
    },
    onHeaders(status, raw, resume, statusText) {
      resumeFn = resume;
      h.onResponseStart?.(controller, status, headersOf(raw), statusText);
      return !controller.paused;
    },
    onData(chunk) {
      h.onResponseData?.(controller, chunk);
      return !controller.paused;
    },
    onComplete(trailers) {
      h.onResponseEnd?.(controller, headersOf(trailers));
    },
    onError(error) {
      h.onResponseError?.(controller, error);
    },
    onUpgrade(status, raw, socket) {
      h.onRequestUpgrade?.(controller, status, headersOf(raw), socket);
    },
  };
}
