// lossless status: what GET /status says, as a few lines for people or as the raw JSON for scripts.

import { parseArgs } from 'node:util';
import { callAdmin, describeRefusal, field } from '../admin.js';
import { adminBase, endpoint, parsing, seconds } from '../args.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../errors.js';
import { HELP } from '../help.js';

/** /status answers at once; a server that does not is not a lossless provider, or a stuck one. */
const DEFAULT_TIMEOUT_S = 10;

export async function statusCommand(argv: readonly string[], context: CliContext): Promise<number> {
  const { values } = parsing(() =>
    parseArgs({
      args: [...argv],
      options: {
        admin: { type: 'string' },
        json: { type: 'boolean' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }),
  );
  if (values.help === true) {
    context.stdout.write(HELP.status);
    return EXIT.ok;
  }
  const url = endpoint(adminBase(values.admin, context.env), '/status');
  const timeoutS = seconds('--timeout', values.timeout, DEFAULT_TIMEOUT_S);

  const answer = await callAdmin(context, url, { method: 'GET' }, timeoutS);
  switch (answer.kind) {
    case 'timeout':
      context.stderr.write(`timed out after ${answer.afterS} s\n`);
      return EXIT.timeout;
    case 'unreachable':
      context.stderr.write(`not reachable: ${answer.reason}\n`);
      return EXIT.unreachable;
    case 'answer': {
      if (answer.status !== 200) {
        context.stderr.write(`refused: ${describeRefusal(answer)}\n`);
        return EXIT.refused;
      }
      if (typeof field(answer.json, 'state') !== 'string') {
        context.stderr.write(`refused: HTTP 200 without a provider status from ${url.href}\n`);
        return EXIT.refused;
      }
      context.stdout.write(values.json === true ? `${answer.text.trim()}\n` : formatStatus(answer.json));
      return EXIT.ok;
    }
  }
}

/** The lines `lossless status` prints for a /status body (fields it lacks show as `?`). */
export function formatStatus(status: unknown): string {
  const text = (value: unknown): string =>
    typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : '?';
  const registry = field(status, 'registry');
  const registered = field(registry, 'registered');
  const inFlight = field(status, 'inFlight');
  const oldest = field(status, 'oldestInFlightMs');
  const inStateMs = field(status, 'inStateMs');
  const rows: [string, string][] = [
    ['service', text(field(status, 'service'))],
    ['state', text(field(status, 'state'))],
    ['reason', text(field(status, 'reason'))],
    [
      'in flight',
      typeof inFlight === 'number' && inFlight > 0 && typeof oldest === 'number'
        ? `${inFlight} (oldest ${Math.round(oldest)} ms)`
        : text(inFlight),
    ],
    [
      'registry',
      `${text(field(registry, 'kind'))}, ${registered === true ? 'registered' : registered === false ? 'not registered' : '?'}`,
    ],
    ['in state', typeof inStateMs === 'number' ? duration(inStateMs) : '?'],
  ];
  return rows.map(([key, value]) => `${key.padEnd(10)}${value}\n`).join('');
}

/** 850 ms, 12.3 s, 4 min 5 s, 2 h 3 min. */
function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
