import { afterEach, describe, expect, it } from 'vitest';
import { formatStatus } from '../src/commands/status.js';
import { main } from '../src/main.js';
import { adminServer, capture, closedPort, closeServers, sendJson } from './helpers.js';

afterEach(closeServers);

const STATUS = {
  service: 'hello-service',
  state: 'ready',
  reason: 'registered and read back',
  since: '2025-01-01T00:00:00.000Z',
  inStateMs: 83_400,
  inFlight: 3,
  oldestInFlightMs: 412.7,
  requests: 1017,
  registry: { kind: 'file', registered: true, instance: { service: 'hello-service', id: '127.0.0.1:3000' } },
  lastDrain: undefined,
  version: '0.1.0',
};

/** Answers GET /status like a provider. */
function provider(status: object = STATUS) {
  return adminServer((req, res) => {
    if (req.url !== '/status') return sendJson(res, 404, { error: 'LOSSLESS_ERR_ADMIN_NOT_FOUND', message: 'no' });
    if (req.method !== 'GET') return sendJson(res, 405, { error: 'LOSSLESS_ERR_ADMIN_METHOD', message: 'no' });
    sendJson(res, 200, status);
  });
}

describe('lossless status', () => {
  it('GETs <admin>/status and prints state, reason, in flight, registry and time in state', async () => {
    const server = await provider();
    const io = capture();
    expect(await main(['status', '--admin', server.url], io)).toBe(0);
    expect(server.seen).toMatchObject([{ method: 'GET', url: '/status' }]);
    expect(io.stdout.text).toBe(
      [
        'service   hello-service',
        'state     ready',
        'reason    registered and read back',
        'in flight 3 (oldest 413 ms)',
        'registry  file, registered',
        'in state  1 min 23 s',
        '',
      ].join('\n'),
    );
    expect(io.stderr.text).toBe('');
  });

  it('prints the JSON answer as it came with --json', async () => {
    const server = await provider();
    const io = capture();
    expect(await main(['status', '--admin', server.url, '--json'], io)).toBe(0);
    expect(io.stdout.text).toBe(`${JSON.stringify(STATUS)}\n`);
  });

  it('reads LOSSLESS_ADMIN_URL', async () => {
    const server = await provider({ ...STATUS, state: 'draining', reason: 'POST /prestop', inFlight: 0 });
    const io = capture({ env: { LOSSLESS_ADMIN_URL: server.url } });
    expect(await main(['status'], io)).toBe(0);
    expect(io.stdout.text).toContain('state     draining\n');
    expect(io.stdout.text).toContain('in flight 0\n');
  });

  it('exits 4 with "not reachable: <reason>" when nothing listens', async () => {
    const port = await closedPort();
    const io = capture();
    expect(await main(['status', '--admin', `http://127.0.0.1:${port}`], io)).toBe(4);
    expect(io.stderr.text).toBe(`not reachable: connect ECONNREFUSED 127.0.0.1:${port}\n`);
    expect(io.stdout.text).toBe('');
  });

  it('exits 5 when the server refuses or is not a lossless admin server', async () => {
    const wrongPath = await adminServer((_req, res) => sendJson(res, 404, { error: 'LOSSLESS_ERR_ADMIN_NOT_FOUND' }));
    const refused = capture();
    expect(await main(['status', '--admin', wrongPath.url], refused)).toBe(5);
    expect(refused.stderr.text).toBe('refused: HTTP 404 LOSSLESS_ERR_ADMIN_NOT_FOUND\n');

    const other = await adminServer((_req, res) => sendJson(res, 200, { hello: 'world' }));
    const notStatus = capture();
    expect(await main(['status', '--admin', other.url, '--json'], notStatus)).toBe(5);
    expect(notStatus.stderr.text).toBe(`refused: HTTP 200 without a provider status from ${other.url}/status\n`);
  });

  it('exits 3 when the server does not answer within --timeout', async () => {
    const server = await adminServer(() => {});
    const io = capture();
    expect(await main(['status', '--admin', server.url, '--timeout', '0.2'], io)).toBe(3);
    expect(io.stderr.text).toBe('timed out after 0.2 s\n');
  });

  it('prints its help with --help', async () => {
    const io = capture();
    expect(await main(['status', '--help'], io)).toBe(0);
    expect(io.stdout.text).toMatch(/^Usage: lossless status/);
  });

  // the wording after the code is node:util parseArgs' own, which names the bad input
  it.each([
    [['--jsn'], "unknown option '--jsn'"],
    [['--json=yes'], "'--json'"],
    [['now'], "'now'"],
  ])('exits 2 with a coded message naming the bad input for %j', async (args, named) => {
    const io = capture();
    expect(await main(['status', ...args], io)).toBe(2);
    expect(io.stderr.text).toMatch(/^lossless status: LOSSLESS_ERR_CLI_USAGE: .+; see 'lossless status --help'\n$/);
    expect(io.stderr.text).toContain(named);
  });
});

describe('formatStatus', () => {
  it('shows ? for what the status lacks, and short and long durations', () => {
    expect(formatStatus({ state: 'starting', inStateMs: 850 })).toBe(
      [
        'service   ?',
        'state     starting',
        'reason    ?',
        'in flight ?',
        'registry  ?, ?',
        'in state  850 ms',
        '',
      ].join('\n'),
    );
    expect(formatStatus({ inStateMs: 12_345, registry: { registered: false } })).toContain(
      'registry  ?, not registered\nin state  12.3 s\n',
    );
    expect(formatStatus({ inStateMs: 2 * 3_600_000 + 3 * 60_000 })).toContain('in state  2 h 3 min\n');
  });
});
