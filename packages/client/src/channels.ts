// The client's decisions as diagnostics_channel events: which instance a request went to, when it
// was retried and why, when an instance was ejected or its circuit changed. Nothing is built for an
// event unless someone subscribes (`channel.hasSubscribers`), so the request path pays one boolean
// read per decision.

import diagnosticsChannel from 'node:diagnostics_channel';

/** diagnostics_channel names published by the client. */
export const CLIENT_CHANNELS = {
  /** An instance was picked for an attempt. */
  pick: 'lossless:client:pick',
  /** A failed attempt is retried (published before the backoff). */
  retry: 'lossless:client:retry',
  /** A response carried the offline marker. */
  marker: 'lossless:client:marker',
  /** An instance was taken out of rotation (after a marker). */
  eject: 'lossless:client:eject',
  /** A registry read was asked for (marker, suspicious empty list). */
  refresh: 'lossless:client:refresh',
  /** A registry read or subscription failed; the last good list stays in use. */
  registryError: 'lossless:client:registry-error',
  /** An instance's circuit opened, went half-open or closed. */
  circuit: 'lossless:client:circuit',
} as const;

export interface PickEvent {
  readonly service: string;
  readonly instance: string;
  readonly origin: string;
  /** The instance's weight after its warm-up factor. */
  readonly weight: number;
  /** Its warm-up factor in (0, 1]; 1 when warm. */
  readonly warmupFactor: number;
  /** Requests in flight on it before this one. */
  readonly inFlight: number;
  /** 1 for the first attempt of a request. */
  readonly attempt: number;
}

export interface RetryEvent {
  readonly service: string;
  /** The attempt that failed (1 = the first). */
  readonly attempt: number;
  /** Instances tried so far, in order. */
  readonly tried: readonly string[];
  /** `code` of the error when it has one, else its message. */
  readonly reason: string;
}

export interface MarkerEvent {
  readonly service: string;
  readonly instance: string;
  readonly origin: string;
  readonly status: number;
}

export interface EjectEvent {
  readonly service: string;
  readonly instance: string;
  readonly origin: string;
  /** `marker`: a response carried the offline marker; `goaway`: its HTTP/2 session got GOAWAY. */
  readonly reason: 'marker' | 'goaway';
}

export interface RefreshEvent {
  readonly service: string;
  readonly reason: 'marker' | 'goaway' | 'empty-list' | 'api';
}

export interface RegistryErrorEvent {
  readonly service: string;
  readonly error: Error;
}

export interface CircuitEvent {
  readonly origin: string;
  readonly state: 'open' | 'half-open' | 'closed';
}

export const pickChannel = diagnosticsChannel.channel(CLIENT_CHANNELS.pick);
export const retryChannel = diagnosticsChannel.channel(CLIENT_CHANNELS.retry);
export const markerChannel = diagnosticsChannel.channel(CLIENT_CHANNELS.marker);
export const ejectChannel = diagnosticsChannel.channel(CLIENT_CHANNELS.eject);
export const refreshChannel = diagnosticsChannel.channel(CLIENT_CHANNELS.refresh);
export const registryErrorChannel = diagnosticsChannel.channel(CLIENT_CHANNELS.registryError);
export const circuitChannel = diagnosticsChannel.channel(CLIENT_CHANNELS.circuit);
