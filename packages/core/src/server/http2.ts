// The connections of a node:http2 server, for the drain. HTTP/2 has no `Connection: close`: a
// session is told to go away with GOAWAY frames, and Node's server.close() leaves sessions open
// (nodejs/node#57611), so the provider follows them itself:
//   - at the start of a drain, every session open then gets a first GOAWAY with the highest stream id
//     (2^31-1), then the final one with the last stream the server processed. The final one goes out
//     once a PING sent after the first comes back: the acknowledgement arrives after every stream the
//     client opened before it read the first GOAWAY, so it is one measured round trip later, no
//     sooner and no fixed delay to guess. Two facts of nghttp2 (Node's HTTP/2) shape the rest: once
//     it sent any GOAWAY it processes no new stream (a stream that crossed the first GOAWAY is left
//     unanswered until the final one tells the client it was not processed, which the client then
//     replays elsewhere, safely for any method), and a session with no stream open stops reading
//     after a GOAWAY (the PING's answer would never be read). So the final GOAWAY goes out at once
//     when the session has no stream open, at the PING's answer otherwise, or when its last stream
//     ends, whichever comes first (after FINAL_GOAWAY_MAX_MS at worst: a client that never answers).
//   - a session opened during the drain is served: it gets the same GOAWAYs once it has served a
//     stream and has none open, as an HTTP/1.1 connection opened during a drain is closed after its
//     last response. Telling it to go away at once would refuse the requests of a caller that still
//     routes here, again on every new connection.
//   - streams already open are served to their end;
//   - at the end of the drain every session is closed (session.close(): it ends once its streams
//     have), and what is left is destroyed at drain.closeTimeoutMs.
// HTTP/1.1 connections of an `allowHTTP1` server are Node's http connections: the tracker marks
// their responses with `Connection: close` as on a node:http server; the idle ones are closed here
// at the end (an http2 server has no closeIdleConnections()).

import type { ServerResponse } from 'node:http';
import {
  constants,
  type Http2SecureServer,
  type Http2Server,
  type Http2ServerResponse,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { TLSSocket } from 'node:tls';

/** The highest stream id: a first GOAWAY that says "going away" without refusing any stream yet. */
const MAX_STREAM_ID = 2 ** 31 - 1;
/** When a client does not acknowledge the PING, the final GOAWAY goes out after this, in ms. */
export const FINAL_GOAWAY_MAX_MS = 1000;

export type AnyHttp2Server = Http2Server | Http2SecureServer;

/** True for a node:http2 server (`http2.createServer()`, `http2.createSecureServer()`). */
export function isHttp2Server(server: object): server is AnyHttp2Server {
  // updateSettings() exists on http2 servers only; http(s) servers have closeIdleConnections() instead
  return typeof (server as Partial<Http2Server>).updateSettings === 'function';
}

/** True for the response of an HTTP/2 stream (compat API), false for an HTTP/1.x response. */
export function isHttp2Response(res: ServerResponse | Http2ServerResponse): res is Http2ServerResponse {
  return (res as Partial<Http2ServerResponse>).stream !== undefined;
}

type Http1Socket = TLSSocket & { _httpMessage?: ServerResponse | null };

/** What is known of one session. */
interface SessionState {
  /** Streams open now (counted from the drain's start). */
  open: number;
  /** Streams seen (from the drain's start). */
  served: number;
  /** Opened during the drain: told to go away once it served a stream and has none open. */
  late: boolean;
  /** Sends the final GOAWAY, once the first one went out. */
  final: (() => void) | undefined;
}

export class Http2Sessions {
  readonly #server: AnyHttp2Server;
  readonly #sessions = new Map<ServerHttp2Session, SessionState>();
  /** HTTP/1.1 connections of an allowHTTP1 server. */
  readonly #http1 = new Set<Http1Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #draining = false;
  #closing = false;

  constructor(server: AnyHttp2Server) {
    this.#server = server;
    server.on('session', this.#onSession);
    server.on('secureConnection', this.#onSecureConnection);
  }

  /** Open sessions (HTTP/2 connections). */
  get size(): number {
    return this.#sessions.size;
  }

  /** Open HTTP/1.1 connections (allowHTTP1). */
  get http1Size(): number {
    return this.#http1.size;
  }

  /**
   * The drain begins: every session open now goes away the graceful way; later ones once served.
   * `open`: the streams in flight now (the tracker's): sessions are followed stream by stream only
   * from here on, so that this costs requests nothing before a drain. A stream open but not given
   * (an ignored path) only makes its session's final GOAWAY come sooner.
   */
  goaway(open: Iterable<ServerHttp2Stream> = []): void {
    if (this.#draining) return;
    this.#draining = true;
    for (const stream of open) {
      const state = this.#sessions.get(stream.session as ServerHttp2Session);
      if (state === undefined || stream.closed || stream.destroyed) continue;
      this.#opened(stream, state);
    }
    for (const [session, state] of this.#sessions) {
      this.#follow(session, state);
      this.#goaway(session, state);
    }
  }

  /** The end of the drain: every session closes once its streams have; idle HTTP/1.1 connections close. */
  close(): void {
    this.#closing = true;
    this.#clearTimers();
    for (const session of this.#sessions.keys()) if (!session.closed && !session.destroyed) session.close();
    for (const socket of this.#http1) {
      if (idle(socket)) socket.destroy();
      // ends after the response under way (one that started before the drain has no Connection: close)
      else socket._httpMessage?.once('finish', () => socket.end());
    }
  }

  /** Destroys every session and connection left (the close timeout, or a drain cut short). */
  destroy(): void {
    this.#closing = true;
    this.#clearTimers();
    for (const session of this.#sessions.keys()) session.destroy();
    for (const socket of this.#http1) socket.destroy();
  }

  detach(): void {
    this.#clearTimers();
    this.#server.removeListener('session', this.#onSession);
    this.#server.removeListener('secureConnection', this.#onSecureConnection);
  }

  readonly #onSession = (session: ServerHttp2Session): void => {
    const state: SessionState = { open: 0, served: 0, late: this.#draining, final: undefined };
    this.#sessions.set(session, state);
    session.once('close', () => this.#sessions.delete(session));
    if (this.#draining) this.#follow(session, state);
    if (this.#closing) session.close();
  };

  /** From now on every stream of `session` is counted while it is open. */
  #follow(session: ServerHttp2Session, state: SessionState): void {
    session.on('stream', (stream: ServerHttp2Stream) => this.#opened(stream, state));
  }

  #opened(stream: ServerHttp2Stream, state: SessionState): void {
    state.open++;
    state.served++;
    const session = stream.session as ServerHttp2Session;
    stream.once('close', () => {
      state.open--;
      if (state.open > 0) return;
      if (state.final !== undefined) state.final();
      else if (state.late && !this.#closing) this.#goaway(session, state);
    });
  }

  readonly #onSecureConnection = (socket: Http1Socket): void => {
    if (socket.alpnProtocol === 'h2') return;
    this.#http1.add(socket);
    socket.once('close', () => this.#http1.delete(socket));
  };

  #goaway(session: ServerHttp2Session, state: SessionState): void {
    if (session.closed || session.destroyed || state.final !== undefined) return;
    // opened during the drain: its first streams are served first
    if (state.late && (state.served === 0 || state.open > 0)) return;
    session.goaway(constants.NGHTTP2_NO_ERROR, MAX_STREAM_ID);
    let sent = false;
    const final = (): void => {
      if (sent) return;
      sent = true;
      clearTimeout(timer);
      this.#timers.delete(timer);
      // lastStreamID 0: nghttp2's last processed stream
      if (!session.closed && !session.destroyed) session.goaway(constants.NGHTTP2_NO_ERROR);
    };
    state.final = final;
    // no stream open: the session reads nothing more (not even the PING's answer)
    if (state.open === 0) {
      sent = true;
      if (!session.closed && !session.destroyed) session.goaway(constants.NGHTTP2_NO_ERROR);
      return;
    }
    const timer = setTimeout(final, FINAL_GOAWAY_MAX_MS).unref();
    this.#timers.add(timer);
    // nghttp2 sends a PING before frames queued earlier: ask for it once the GOAWAY is on the wire
    setImmediate(() => {
      if (sent || session.closed || session.destroyed) return;
      try {
        session.ping(() => final());
      } catch {
        // too many PINGs outstanding, or the session is going: the timer sends the final GOAWAY
      }
    });
  }

  #clearTimers(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}

/** An HTTP/1.1 connection with no response under way. */
function idle(socket: Http1Socket): boolean {
  return socket._httpMessage === null || socket._httpMessage === undefined;
}
