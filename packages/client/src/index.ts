// @lossless/client: call services by name through the registry without losing a request while their
// instances come and go.

export type {
  CircuitEvent,
  EjectEvent,
  MarkerEvent,
  PickEvent,
  RefreshEvent,
  RegistryErrorEvent,
  RetryEvent,
} from './channels.js';
export { CLIENT_CHANNELS } from './channels.js';
export type { InstanceView, LosslessClient } from './client.js';
export { createClient } from './client.js';
export type { Endpoint, ServiceState } from './discovery/table.js';
export {
  AllCircuitsOpenError,
  CircuitOpenError,
  NoInstanceError,
  RequestTimeoutError,
  RetryBudgetExhaustedError,
} from './errors.js';
export type { ClientOptions, TlsConnectOptions } from './options.js';
export { serviceOfOrigin } from './options.js';
