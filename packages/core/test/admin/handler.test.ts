import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type AdminTarget, createAdminHandler, isLoopback, notFound, type Probe } from '../../src/admin/handler.js';

/** Waits until `condition` holds, checking often, and fails once `timeoutMs` has passed. */
async function pollUntil(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface Probes {
  livez: Probe;
  readyz: Probe;
  startupz: Probe;
}

function makeTarget(probes: Partial<Probes> = {}) {
  const state: Probes = {
    livez: { ok: true, body: { state: 'live' } },
    readyz: { ok: true, body: { state: 'ready' } },
    startupz: { ok: true, body: { state: 'started' } },
    ...probes,
  };
  const prestop = vi.fn(async () => ({ drained: true, inFlight: 0 }));
  const target: AdminTarget = {
    livez: () => state.livez,
    readyz: () => state.readyz,
    startupz: () => state.startupz,
    status: () => ({ state: 'serving', inFlight: 3 }),
    prestop,
  };
  return { target, state, prestop };
}

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

let server: Server | undefined;
let port: number;

async function serve(target: AdminTarget, token?: string): Promise<void> {
  const handler = createAdminHandler(target, token);
  server = createServer((req, res) => {
    if (!handler(req, res)) notFound(req, res);
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
}

/** One request over a fresh connection; `chunks` are written one by one (chunked encoding unless a length is set). */
function send(
  method: string,
  path: string,
  options: { headers?: Record<string, string | number>; chunks?: readonly Buffer[] } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, headers: options.headers, agent: false },
      (res: IncomingMessage) => {
        const parts: Buffer[] = [];
        res.on('data', (chunk: Buffer) => parts.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    // the server may answer (413) and close before the whole body is sent
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
    });
    for (const chunk of options.chunks ?? []) req.write(chunk);
    req.end();
  });
}

const json = (reply: Reply): Record<string, unknown> => JSON.parse(reply.text) as Record<string, unknown>;

afterEach(async () => {
  const s = server;
  server = undefined;
  if (s !== undefined) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

describe('createAdminHandler over HTTP', () => {
  let target: ReturnType<typeof makeTarget>;

  beforeEach(async () => {
    target = makeTarget();
    await serve(target.target);
  });

  it.each(['livez', 'readyz', 'startupz'] as const)('GET /%s answers 200 with the probe body when ok', async (name) => {
    const reply = await send('GET', `/${name}`);
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toMatch(/^application\/json/);
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(json(reply)).toEqual(target.state[name].body);
  });

  it.each(['livez', 'readyz', 'startupz'] as const)(
    'GET /%s answers 503 with the probe body when not ok',
    async (name) => {
      target.state[name] = { ok: false, body: { state: 'draining', reason: name } };
      const reply = await send('GET', `/${name}`);
      expect(reply.status).toBe(503);
      expect(json(reply)).toEqual({ state: 'draining', reason: name });
      // the other probes are unaffected
      for (const other of (['livez', 'readyz', 'startupz'] as const).filter((n) => n !== name)) {
        expect((await send('GET', `/${other}`)).status).toBe(200);
      }
    },
  );

  it('ignores the query string', async () => {
    const reply = await send('GET', '/readyz?verbose=1');
    expect(reply.status).toBe(200);
    expect(json(reply)).toEqual({ state: 'ready' });
  });

  it('GET /status answers 200 with the status', async () => {
    const reply = await send('GET', '/status');
    expect(reply.status).toBe(200);
    expect(json(reply)).toEqual({ state: 'serving', inFlight: 3 });
  });

  it.each(['/livez', '/readyz', '/startupz'])('HEAD %s answers the status with no body', async (path) => {
    target.state.readyz = { ok: false, body: { state: 'starting' } };
    const reply = await send('HEAD', path);
    expect(reply.status).toBe(path === '/readyz' ? 503 : 200);
    expect(reply.text).toBe('');
    expect(reply.headers['content-type']).toMatch(/^application\/json/);
  });

  it('POST /readyz answers 405 with an Allow header', async () => {
    const reply = await send('POST', '/readyz');
    expect(reply.status).toBe(405);
    expect(reply.headers.allow).toBe('GET, HEAD');
    expect(json(reply)).toMatchObject({ error: 'LOSSLESS_ERR_ADMIN_METHOD' });
  });

  it('GET /prestop answers 405 with Allow: POST and does not drain', async () => {
    const reply = await send('GET', '/prestop');
    expect(reply.status).toBe(405);
    expect(reply.headers.allow).toBe('POST');
    expect(target.prestop).not.toHaveBeenCalled();
  });

  it('an unknown path answers 404 with LOSSLESS_ERR_ADMIN_NOT_FOUND', async () => {
    const reply = await send('GET', '/nope?x=1');
    expect(reply.status).toBe(404);
    expect(json(reply)).toMatchObject({ error: 'LOSSLESS_ERR_ADMIN_NOT_FOUND' });
    expect(String(json(reply).message)).toContain('/nope');
    expect(String(json(reply).message)).not.toContain('x=1');
  });

  it('POST /prestop from loopback drains once and answers 200 with the result', async () => {
    const reply = await send('POST', '/prestop');
    expect(reply.status).toBe(200);
    expect(json(reply)).toEqual({ drained: true, inFlight: 0 });
    expect(target.prestop).toHaveBeenCalledTimes(1);
  });

  it('POST /prestop with a small body is accepted', async () => {
    const body = Buffer.alloc(1024, 'a');
    const reply = await send('POST', '/prestop', { headers: { 'content-length': body.length }, chunks: [body] });
    expect(reply.status).toBe(200);
    expect(target.prestop).toHaveBeenCalledTimes(1);
  });

  it('POST /prestop answers 500 when the drain fails', async () => {
    target.prestop.mockRejectedValueOnce(new Error('boom'));
    const reply = await send('POST', '/prestop');
    expect(reply.status).toBe(500);
    expect(json(reply)).toEqual({ error: 'LOSSLESS_ERR_PRESTOP', message: 'boom' });
  });

  it('POST /prestop with a declared body over 1024 bytes answers 413 and does not drain', async () => {
    const body = Buffer.alloc(1025, 'a');
    const reply = await send('POST', '/prestop', { headers: { 'content-length': body.length }, chunks: [body] });
    expect(reply.status).toBe(413);
    expect(json(reply)).toMatchObject({ error: 'LOSSLESS_ERR_ADMIN_BODY_TOO_LARGE' });
    expect(target.prestop).not.toHaveBeenCalled();
  });

  it('POST /prestop with a chunked body over 1024 bytes answers 413 and does not drain', async () => {
    const reply = await send('POST', '/prestop', { chunks: [Buffer.alloc(600, 'a'), Buffer.alloc(600, 'b')] });
    expect(reply.status).toBe(413);
    expect(json(reply)).toMatchObject({ error: 'LOSSLESS_ERR_ADMIN_BODY_TOO_LARGE' });
    expect(target.prestop).not.toHaveBeenCalled();
  });
});

describe('createAdminHandler with a global fetch client', () => {
  it('answers probes and prestop', async () => {
    const { target, prestop } = makeTarget({ readyz: { ok: false, body: { state: 'warming' } } });
    await serve(target);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ state: 'warming' });

    const head = await fetch(`http://127.0.0.1:${port}/livez`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');

    const stop = await fetch(`http://127.0.0.1:${port}/prestop`, { method: 'POST' });
    expect(stop.status).toBe(200);
    expect(await stop.json()).toEqual({ drained: true, inFlight: 0 });
    expect(prestop).toHaveBeenCalledTimes(1);
  });
});

/** Minimal request/response doubles, for callers that are not on loopback. */
function fakeExchange(headers: Record<string, string>, remoteAddress = '10.1.2.3') {
  const req = Object.assign(new PassThrough(), {
    method: 'POST',
    url: '/prestop',
    headers,
    socket: { remoteAddress },
  });
  req.end();
  const res = {
    statusCode: 200,
    headersSent: false,
    destroyed: false,
    ended: false,
    body: undefined as string | undefined,
    headers: {} as Record<string, unknown>,
    setHeader(name: string, value: unknown) {
      this.headers[name.toLowerCase()] = value;
      return this;
    },
    end(body?: string) {
      this.ended = true;
      this.headersSent = true;
      this.body = body;
      return this;
    },
  };
  return { req: req as unknown as IncomingMessage, res, resArg: res as unknown as ServerResponse };
}

describe('createAdminHandler: POST /prestop off loopback', () => {
  const token = 'correct-horse-battery';

  it('refuses a caller with no token (401) and does not drain', async () => {
    const { target, prestop } = makeTarget();
    const { req, res, resArg } = fakeExchange({});
    expect(createAdminHandler(target, token)(req, resArg)).toBe(true);
    await pollUntil(() => res.ended, 'the answer');
    expect(res.statusCode).toBe(401);
    expect(JSON.parse(String(res.body))).toMatchObject({ error: 'LOSSLESS_ERR_ADMIN_UNAUTHORIZED' });
    expect(prestop).not.toHaveBeenCalled();
  });

  it('refuses every caller when no token is configured', async () => {
    const { target, prestop } = makeTarget();
    const { req, res, resArg } = fakeExchange({ authorization: 'Bearer anything-at-all' });
    createAdminHandler(target, undefined)(req, resArg);
    await pollUntil(() => res.ended, 'the answer');
    expect(res.statusCode).toBe(401);
    expect(prestop).not.toHaveBeenCalled();
  });

  it.each([
    ['a wrong token', 'Bearer wrong-token-value'],
    ['a prefix of the token', `Bearer ${token.slice(0, -1)}`],
    ['the token with extra characters', `Bearer ${token}x`],
    ['the token without the Bearer scheme', token],
    ['the token as Basic credentials', `Basic ${token}`],
    ['an empty bearer', 'Bearer '],
  ])('refuses %s (401)', async (_what, authorization) => {
    const { target, prestop } = makeTarget();
    const { req, res, resArg } = fakeExchange({ authorization });
    createAdminHandler(target, token)(req, resArg);
    await pollUntil(() => res.ended, 'the answer');
    expect(res.statusCode).toBe(401);
    expect(String(res.body)).not.toContain(token);
    expect(prestop).not.toHaveBeenCalled();
  });

  it('accepts the right token as Authorization: Bearer and drains', async () => {
    const { target, prestop } = makeTarget();
    const { req, res, resArg } = fakeExchange({ authorization: `Bearer ${token}` });
    createAdminHandler(target, token)(req, resArg);
    await pollUntil(() => res.ended, 'the answer');
    expect(prestop).toHaveBeenCalledTimes(1);
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(String(res.body))).toEqual({ drained: true, inFlight: 0 });
  });

  it('accepts a loopback caller without the token even when one is configured', async () => {
    const { target, prestop } = makeTarget();
    const { req, res, resArg } = fakeExchange({}, '::ffff:127.0.0.1');
    createAdminHandler(target, token)(req, resArg);
    await pollUntil(() => res.ended, 'the answer');
    expect(res.statusCode).toBe(200);
    expect(prestop).toHaveBeenCalledTimes(1);
  });

  it('lets any caller read the probes', async () => {
    const { target } = makeTarget();
    const { req, res, resArg } = fakeExchange({});
    Object.assign(req, { method: 'GET', url: '/readyz' });
    createAdminHandler(target, token)(req, resArg);
    await pollUntil(() => res.ended, 'the answer');
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(String(res.body))).toEqual({ state: 'ready' });
  });

  it('returns false for paths it does not handle, leaving the response alone', () => {
    const { target } = makeTarget();
    const { req, res, resArg } = fakeExchange({});
    Object.assign(req, { method: 'GET', url: '/orders' });
    expect(createAdminHandler(target, token)(req, resArg)).toBe(false);
    expect(res.ended).toBe(false);
  });
});

describe('createAdminHandler: GET /prestop (Kubernetes httpGet preStop hook)', () => {
  const token = 'correct-horse-battery';

  /** A GET /prestop off loopback, as the kubelet sends it from the node's address. */
  async function get(configured: string | undefined, headers: Record<string, string>, remoteAddress = '10.1.2.3') {
    const { target, prestop } = makeTarget();
    const { req, res, resArg } = fakeExchange(headers, remoteAddress);
    Object.assign(req, { method: 'GET' });
    createAdminHandler(target, configured)(req, resArg);
    await pollUntil(() => res.ended, 'the answer');
    return { res, prestop, body: JSON.parse(String(res.body)) as Record<string, unknown> };
  }

  it.each([
    ['Authorization: Bearer', { authorization: `Bearer ${token}` }],
    ['Authorization: bearer (any case)', { authorization: `bEaReR ${token}` }],
    ['X-Lossless-Token', { 'x-lossless-token': token }],
  ])('drains with the token as %s and answers 200 with the result', async (_how, headers) => {
    const { res, prestop, body } = await get(token, headers);
    expect(res.statusCode).toBe(200);
    expect(body).toEqual({ drained: true, inFlight: 0 });
    expect(prestop).toHaveBeenCalledTimes(1);
  });

  it.each([
    ['no token', {}],
    ['a wrong bearer token', { authorization: 'Bearer wrong-token-value' }],
    ['a wrong X-Lossless-Token', { 'x-lossless-token': 'wrong-token-value' }],
    ['a prefix of the token', { 'x-lossless-token': token.slice(0, -1) }],
    ['the token with extra characters', { 'x-lossless-token': `${token}x` }],
    ['the token without the Bearer scheme', { authorization: token }],
  ])('refuses %s (401) and does not drain', async (_what, headers) => {
    const { res, prestop, body } = await get(token, headers);
    expect(res.statusCode).toBe(401);
    expect(body).toMatchObject({ error: 'LOSSLESS_ERR_ADMIN_UNAUTHORIZED' });
    expect(String(body.message)).toContain('GET /prestop');
    expect(String(res.body)).not.toContain(token);
    expect(prestop).not.toHaveBeenCalled();
  });

  it.each(['127.0.0.1', '::1', '::ffff:127.0.0.1'])(
    'refuses a loopback caller (%s) without the token (401): loopback is enough only for POST',
    async (address) => {
      const { res, prestop } = await get(token, {}, address);
      expect(res.statusCode).toBe(401);
      expect(prestop).not.toHaveBeenCalled();
    },
  );

  it('answers 405 with Allow: POST when no token is configured, whatever the request carries', async () => {
    const { res, prestop, body } = await get(undefined, {
      authorization: `Bearer ${token}`,
      'x-lossless-token': token,
    });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('POST');
    expect(body).toMatchObject({ error: 'LOSSLESS_ERR_ADMIN_METHOD' });
    expect(prestop).not.toHaveBeenCalled();
  });

  it('accepts X-Lossless-Token for POST as well, off loopback', async () => {
    const { target, prestop } = makeTarget();
    const { req, res, resArg } = fakeExchange({ 'x-lossless-token': token });
    createAdminHandler(target, token)(req, resArg);
    await pollUntil(() => res.ended, 'the answer');
    expect(res.statusCode).toBe(200);
    expect(prestop).toHaveBeenCalledTimes(1);
  });

  describe('over HTTP on loopback', () => {
    let target: ReturnType<typeof makeTarget>;

    beforeEach(async () => {
      target = makeTarget();
      await serve(target.target, token);
    });

    it('GET with the token drains and answers with the result', async () => {
      const reply = await send('GET', '/prestop', { headers: { 'x-lossless-token': token } });
      expect(reply.status).toBe(200);
      expect(json(reply)).toEqual({ drained: true, inFlight: 0 });
      expect(target.prestop).toHaveBeenCalledTimes(1);
    });

    it('GET without the token answers 401 although the caller is on loopback', async () => {
      const reply = await send('GET', '/prestop');
      expect(reply.status).toBe(401);
      expect(json(reply)).toMatchObject({ error: 'LOSSLESS_ERR_ADMIN_UNAUTHORIZED' });
      expect(target.prestop).not.toHaveBeenCalled();
    });

    it('POST without the token from loopback still drains', async () => {
      const reply = await send('POST', '/prestop');
      expect(reply.status).toBe(200);
      expect(target.prestop).toHaveBeenCalledTimes(1);
    });

    it.each(['HEAD', 'PUT', 'DELETE'])('%s answers 405 with Allow: GET, POST and does not drain', async (method) => {
      const reply = await send(method, '/prestop', { headers: { authorization: `Bearer ${token}` } });
      expect(reply.status).toBe(405);
      expect(reply.headers.allow).toBe('GET, POST');
      expect(target.prestop).not.toHaveBeenCalled();
    });
  });
});

describe('isLoopback', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['10.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['192.168.1.1', false],
    ['', false],
    [undefined, false],
  ])('%s → %s', (address, expected) => {
    expect(isLoopback(address)).toBe(expected);
  });
});
