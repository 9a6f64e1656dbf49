// The provider modes of the rolling-restart demo (provider.mjs says what each one does).

/** lossless, the naive ways, and the libraries users pick instead. */
export const MODES = [
  'lossless',
  'naive',
  'close-only',
  'fixed-sleep',
  'terminus',
  'lightship',
  'http-terminator',
  'close-with-grace',
  'fastify',
];

/**
 * The libraries users pick instead: they know nothing of a registry and rely on the platform to stop
 * routing to them, so the demo deregisters them when it sends SIGTERM, as Kubernetes takes a
 * terminating pod out of its Service's endpoints.
 */
export const PEER_MODES = ['terminus', 'lightship', 'http-terminator', 'close-with-grace', 'fastify'];
