// The callers of the conformance suite, one per protocol a server kind speaks: a fresh request, and a
// connection that is reused (a keep-alive agent for HTTP/1.1, one session for HTTP/2, opened again
// when the server told it to go away, as real clients do).
//   http1   node:http
//   https1  node:https, HTTP/1.1 over TLS (ALPN http/1.1) to an http2 server with allowHTTP1
//   h2c     node:http2, cleartext
//   h2      undici 8 (allowH2, negotiated over TLS) for fresh requests, node:http2 over TLS for sessions

import { Agent as HttpAgent } from 'node:http';
import { type ClientHttp2Session, connect, type IncomingHttpHeaders } from 'node:http2';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Client } from 'undici';
import { call, type Reply } from '../support.js';
import { TLS } from '../tls.js';

export type Protocol = 'http1' | 'https1' | 'h2c' | 'h2';

export interface Connection {
  call(path: string, options?: { method?: string }): Promise<Reply>;
  /** The last stream id of every GOAWAY received (HTTP/2). */
  readonly goaways: number[];
  /** True once every connection it opened is closed. */
  closed(): boolean;
  destroy(): void;
  /** The keep-alive agent (HTTP/1.1). */
  readonly agent?: HttpAgent;
}

export interface Caller {
  readonly protocol: Protocol;
  readonly http2: boolean;
  /** One request on a connection of its own. */
  call(port: number, path: string, options?: { method?: string }): Promise<Reply>;
  connect(port: number): Connection;
}

export function callerFor(protocol: Protocol): Caller {
  switch (protocol) {
    case 'http1':
      return {
        protocol,
        http2: false,
        call: (port, path, options) => call(port, path, options),
        connect: (port) => {
          const agent = new HttpAgent({ keepAlive: true, maxSockets: 8 });
          return agentConnection(agent, (path, options) => call(port, path, { ...options, agent }));
        },
      };
    case 'https1':
      return {
        protocol,
        http2: false,
        call: (port, path, options) => httpsCall(port, path, options ?? {}, false),
        connect: (port) => {
          const agent = new HttpsAgent({ keepAlive: true, maxSockets: 8, ca: TLS.cert });
          return agentConnection(agent, (path, options) => httpsCall(port, path, options ?? {}, agent));
        },
      };
    case 'h2c':
    case 'h2': {
      const origin = (port: number): string => `${protocol === 'h2' ? 'https' : 'http'}://127.0.0.1:${port}`;
      return {
        protocol,
        http2: true,
        call:
          protocol === 'h2'
            ? (port, path, options) => undiciCall(origin(port), path, options ?? {})
            : async (port, path, options) => {
                const connection = sessionConnection(origin(port));
                try {
                  return await connection.call(path, options);
                } finally {
                  connection.destroy();
                }
              },
        connect: (port) => sessionConnection(origin(port)),
      };
    }
  }
}

function agentConnection(
  agent: HttpAgent,
  send: (path: string, options?: { method?: string }) => Promise<Reply>,
): Connection {
  return {
    call: send,
    agent,
    goaways: [],
    closed: () => Object.keys(agent.sockets).length === 0 && Object.keys(agent.freeSockets).length === 0,
    destroy: () => agent.destroy(),
  };
}

function httpsCall(
  port: number,
  path: string,
  options: { method?: string },
  agent: HttpsAgent | false,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        agent,
        ca: TLS.cert, // no ALPN offered: the server falls back to HTTP/1.1 (allowHTTP1)
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, at: Date.now() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function undiciCall(origin: string, path: string, options: { method?: string }): Promise<Reply> {
  const client = new Client(origin, { connect: { ca: TLS.cert }, allowH2: true });
  try {
    const { statusCode, headers, body } = await client.request({ path, method: options.method ?? 'GET' });
    return { status: statusCode, headers, body: await body.text(), at: Date.now() };
  } finally {
    await client.close();
  }
}

/** HTTP/2 sessions to one origin: a new one whenever the last one was told to go away or closed. */
function sessionConnection(origin: string): Connection {
  const sessions: ClientHttp2Session[] = [];
  const goaways: number[] = [];
  let current: ClientHttp2Session | undefined;
  const session = (): ClientHttp2Session => {
    if (current !== undefined && !current.closed && !current.destroyed) return current;
    const s = connect(origin, { ca: TLS.cert });
    s.on('error', () => {});
    s.on('goaway', (_code, lastStreamId) => goaways.push(lastStreamId));
    sessions.push(s);
    current = s;
    return s;
  };
  const once = (path: string, method: string): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const stream = session().request({ ':path': path, ':method': method });
      let headers: IncomingHttpHeaders = {};
      let body = '';
      stream.setEncoding('utf8');
      stream.on('response', (h) => {
        headers = h;
      });
      stream.on('data', (chunk: string) => {
        body += chunk;
      });
      stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body, at: Date.now() }));
      stream.on('error', reject);
      stream.end();
    });
  return {
    // a stream the server refused (REFUSED_STREAM, or above a GOAWAY's last stream id) was never
    // processed: replayed once on a new session, as undici and other clients do
    call: (path, options = {}) =>
      once(path, options.method ?? 'GET').catch((error: Error & { code?: string }) => {
        if (error.code === 'ERR_HTTP2_STREAM_ERROR' && error.message.includes('REFUSED_STREAM'))
          return once(path, options.method ?? 'GET');
        throw error;
      }),
    goaways,
    closed: () => sessions.every((s) => s.closed || s.destroyed),
    destroy: () => {
      for (const s of sessions) s.destroy();
    },
  };
}
