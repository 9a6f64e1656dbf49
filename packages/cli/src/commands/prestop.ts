// lossless prestop: drain the provider through POST /prestop and wait for the answer, which comes
// when the drain is over. Meant for a Kubernetes preStop hook, in place of `sleep 15`.

import { parseArgs } from 'node:util';
import { callAdmin, describeRefusal, field } from '../admin.js';
import { adminBase, endpoint, nonEmpty, parsing, seconds } from '../args.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../errors.js';
import { HELP } from '../help.js';

/** The default bound on the wait, in seconds: above any drain that fits Kubernetes' default grace period. */
const DEFAULT_TIMEOUT_S = 60;

export async function prestopCommand(argv: readonly string[], context: CliContext): Promise<number> {
  const { values } = parsing(() =>
    parseArgs({
      args: [...argv],
      options: {
        admin: { type: 'string' },
        token: { type: 'string' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }),
  );
  if (values.help === true) {
    context.stdout.write(HELP.prestop);
    return EXIT.ok;
  }
  const url = endpoint(adminBase(values.admin, context.env), '/prestop');
  const timeoutS = seconds('--timeout', values.timeout, DEFAULT_TIMEOUT_S);
  const token = nonEmpty(values.token) ?? nonEmpty(context.env.LOSSLESS_ADMIN_TOKEN);

  const answer = await callAdmin(context, url, { method: 'POST', token }, timeoutS);
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
      const outcome = field(answer.json, 'outcome');
      const drainMs = field(answer.json, 'drainMs');
      const cut = field(answer.json, 'cut');
      if (typeof outcome !== 'string' || typeof drainMs !== 'number' || !Array.isArray(cut)) {
        // something answered 200 that is not a lossless provider (a wrong port, a proxy's page)
        context.stderr.write(`refused: HTTP 200 without a drain summary from ${url.href}\n`);
        return EXIT.refused;
      }
      const requests = cut.length === 1 ? 'request' : 'requests';
      context.stdout.write(
        `drained in ${Math.round(drainMs)} ms (outcome ${outcome}, ${cut.length} ${requests} cut)\n`,
      );
      return EXIT.ok;
    }
  }
}
