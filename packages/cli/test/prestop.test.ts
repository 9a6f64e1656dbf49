import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../src/main.js';
import { adminServer, capture, closedPort, closeServers, sendJson } from './helpers.js';

afterEach(closeServers);

const TOKEN = 'correct-horse-battery';

/** Answers POST /prestop like a provider: after `delayMs` (the drain), with a drain summary. */
function provider(summary: object = { outcome: 'idle', drainMs: 1234, cut: [] }, delayMs = 150) {
  return adminServer((req, res) => {
    if (req.url !== '/prestop') return sendJson(res, 404, { error: 'LOSSLESS_ERR_ADMIN_NOT_FOUND', message: 'no' });
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'LOSSLESS_ERR_ADMIN_METHOD', message: 'no' });
    const auth = req.headers.authorization;
    if (auth !== undefined && auth !== `Bearer ${TOKEN}`)
      return sendJson(res, 401, { error: 'LOSSLESS_ERR_ADMIN_UNAUTHORIZED', message: 'no' });
    setTimeout(() => sendJson(res, 200, { service: 'hello-service', trigger: 'prestop', ...summary }), delayMs);
  });
}

describe('lossless prestop', () => {
  it('POSTs to <admin>/prestop, waits for the end of the drain, prints one line and exits 0', async () => {
    const server = await provider({ outcome: 'idle', drainMs: 1234, cut: [] }, 200);
    const io = capture();
    const startedAt = Date.now();
    const code = await main(['prestop', '--admin', server.url], io);
    expect(code).toBe(0);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(190);
    expect(io.stdout.text).toBe('drained in 1234 ms (outcome idle, 0 requests cut)\n');
    expect(io.stderr.text).toBe('');
    expect(server.seen).toMatchObject([{ method: 'POST', url: '/prestop' }]);
    expect(server.seen[0]?.headers.authorization).toBeUndefined();
  });

  it('reports the outcome and the requests cut of a drain that hit its maximum', async () => {
    const cut = [
      { method: 'GET', url: '/slow', ageMs: 30_000 },
      { method: 'POST', url: '/upload', ageMs: 26_000 },
    ];
    const server = await provider({ outcome: 'timeout', drainMs: 25_004.6, cut, exitCode: 1 });
    const io = capture();
    expect(await main(['prestop', '--admin', server.url], io)).toBe(0);
    expect(io.stdout.text).toBe('drained in 25005 ms (outcome timeout, 2 requests cut)\n');
  });

  it('sends the token from --token, else from LOSSLESS_ADMIN_TOKEN, as Authorization: Bearer', async () => {
    const server = await provider();
    expect(await main(['prestop', '--admin', server.url, '--token', TOKEN], capture())).toBe(0);
    expect(await main(['prestop', '--admin', server.url], capture({ env: { LOSSLESS_ADMIN_TOKEN: TOKEN } }))).toBe(0);
    expect(server.seen.map((s) => s.headers.authorization)).toEqual([`Bearer ${TOKEN}`, `Bearer ${TOKEN}`]);
  });

  it('exits 5 with "refused: HTTP 401 <code>" when the token is wrong', async () => {
    const server = await provider();
    const io = capture({ env: { LOSSLESS_ADMIN_TOKEN: 'wrong-token' } });
    expect(await main(['prestop', '--admin', server.url], io)).toBe(5);
    expect(io.stderr.text).toBe('refused: HTTP 401 LOSSLESS_ERR_ADMIN_UNAUTHORIZED\n');
    expect(io.stdout.text).toBe('');
  });

  it.each([
    [404, 'LOSSLESS_ERR_ADMIN_NOT_FOUND'],
    [405, 'LOSSLESS_ERR_ADMIN_METHOD'],
    [500, 'LOSSLESS_ERR_PRESTOP'],
    [503, undefined],
  ])('exits 5 when the admin server answers %i', async (status, error) => {
    const server = await adminServer((_req, res) => {
      if (error === undefined) res.writeHead(status).end('Service Unavailable');
      else sendJson(res, status, { error, message: 'no' });
    });
    const io = capture();
    expect(await main(['prestop', '--admin', server.url], io)).toBe(5);
    expect(io.stderr.text).toBe(`refused: HTTP ${status}${error === undefined ? '' : ` ${error}`}\n`);
  });

  it('does not follow a redirect (a redirected POST would become a GET)', async () => {
    const server = await adminServer((_req, res) => res.writeHead(307, { location: '/elsewhere' }).end());
    const io = capture();
    expect(await main(['prestop', '--admin', server.url], io)).toBe(5);
    expect(io.stderr.text).toBe('refused: HTTP 307\n');
    expect(server.seen).toHaveLength(1);
  });

  it('exits 5 when a 200 answer is not a drain summary (not a lossless admin server)', async () => {
    const server = await adminServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>hi'));
    const io = capture();
    expect(await main(['prestop', '--admin', server.url], io)).toBe(5);
    expect(io.stderr.text).toBe(`refused: HTTP 200 without a drain summary from ${server.url}/prestop\n`);
  });

  it('exits 3 with "timed out after S s" once --timeout has passed', async () => {
    const server = await adminServer(() => {}); // the drain never ends
    const io = capture();
    const startedAt = Date.now();
    expect(await main(['prestop', '--admin', server.url, '--timeout', '0.3'], io)).toBe(3);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(290);
    // at its --timeout, not never: a loose bound for busy machines
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    expect(io.stderr.text).toBe('timed out after 0.3 s\n');
  });

  it('exits 4 with "not reachable: <reason>" when nothing listens', async () => {
    const port = await closedPort();
    const io = capture();
    expect(await main(['prestop', '--admin', `http://127.0.0.1:${port}`], io)).toBe(4);
    expect(io.stderr.text).toBe(`not reachable: connect ECONNREFUSED 127.0.0.1:${port}\n`);
  });

  it('uses LOSSLESS_ADMIN_URL, else loopback on LOSSLESS_ADMIN_PORT', async () => {
    const server = await provider();
    const fromUrl = capture({ env: { LOSSLESS_ADMIN_URL: `${server.url}/` } });
    expect(await main(['prestop'], fromUrl)).toBe(0);
    const fromPort = capture({ env: { LOSSLESS_ADMIN_PORT: String(server.port) } });
    expect(await main(['prestop'], fromPort)).toBe(0);
    expect(server.seen.map((s) => s.url)).toEqual(['/prestop', '/prestop']);
  });

  it('calls http://127.0.0.1:9797/prestop by default, through the fetch it is given', async () => {
    const urls: string[] = [];
    const fetch: typeof globalThis.fetch = async (input) => {
      urls.push(String(input));
      return Response.json({ outcome: 'idle', drainMs: 5, cut: [] });
    };
    const io = capture({ fetch });
    expect(await main(['prestop'], io)).toBe(0);
    expect(urls).toEqual(['http://127.0.0.1:9797/prestop']);
    expect(io.stdout.text).toBe('drained in 5 ms (outcome idle, 0 requests cut)\n');
  });

  it('keeps a path prefix of --admin', async () => {
    const server = await adminServer((_req, res) => sendJson(res, 200, { outcome: 'idle', drainMs: 1, cut: [] }));
    expect(await main(['prestop', '--admin', `${server.url}/ops/?x=1`], capture())).toBe(0);
    expect(server.seen[0]?.url).toBe('/ops/prestop');
  });

  it('prints its help with --help and -h', async () => {
    for (const flag of ['--help', '-h']) {
      const io = capture();
      expect(await main(['prestop', flag], io)).toBe(0);
      expect(io.stdout.text).toMatch(/^Usage: lossless prestop/);
      expect(io.stdout.text).toContain('--timeout S');
    }
  });

  it.each([
    [['--nope'], "unknown option '--nope'"],
    [['extra'], "'extra'"],
    [['--admin'], "'--admin"],
    [['--timeout', 'soon'], "--timeout expects a number of seconds above 0, got 'soon'"],
    [['--timeout', '0'], "--timeout expects a number of seconds above 0, got '0'"],
    [['--admin', 'ftp://example.com'], "--admin expects an http:// or https:// URL, got 'ftp://example.com'"],
    [['--admin', 'not a url'], "--admin expects an http:// or https:// URL, got 'not a url'"],
  ])('exits 2 with a coded message naming the bad input for %j', async (args, message) => {
    const io = capture({ fetch: () => Promise.reject(new Error('must not be called')) });
    expect(await main(['prestop', ...args], io)).toBe(2);
    expect(io.stderr.text).toMatch(/^lossless prestop: LOSSLESS_ERR_CLI_USAGE: .+; see 'lossless prestop --help'\n$/);
    expect(io.stderr.text.toLowerCase()).toContain(message.toLowerCase());
  });

  it('exits 2 when LOSSLESS_ADMIN_URL is not an http URL', async () => {
    const io = capture({ env: { LOSSLESS_ADMIN_URL: 'localhost:9797' } });
    expect(await main(['prestop'], io)).toBe(2);
    expect(io.stderr.text).toContain("LOSSLESS_ADMIN_URL expects an http:// or https:// URL, got 'localhost:9797'");
  });
});
