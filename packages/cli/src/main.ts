// The lossless command line: picks the command, runs it, and turns usage errors into exit code 2
// with a coded message. bin.ts only calls main() with process.argv.

import { parseArgs } from 'node:util';
import { parsing } from './args.js';
import { prestopCommand } from './commands/prestop.js';
import { benchCommand, demoCommand } from './commands/scripts.js';
import { statusCommand } from './commands/status.js';
import { type CliContext, createContext } from './context.js';
import { CliError, EXIT, UsageError } from './errors.js';
import { HELP, type HelpTopic } from './help.js';
import { VERSION } from './version.js';

type Command = (argv: readonly string[], context: CliContext) => Promise<number>;

const COMMANDS: ReadonlyMap<string, Command> = new Map([
  ['prestop', prestopCommand],
  ['status', statusCommand],
  ['demo', demoCommand],
  ['bench', benchCommand],
]);

/** Runs `lossless <argv>` and resolves with the exit code; never calls process.exit. */
export async function main(argv: readonly string[], overrides: Partial<CliContext> = {}): Promise<number> {
  const context = createContext(overrides);
  const [name, ...rest] = argv;
  const command = name === undefined ? undefined : COMMANDS.get(name);
  try {
    if (command !== undefined) return await command(rest, context);
    if (name === undefined) {
      context.stderr.write(HELP.lossless);
      throw new UsageError('missing command');
    }
    if (!name.startsWith('-')) throw new UsageError(`unknown command '${name}'`);
    return topLevel(argv, context);
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    const prefix = command === undefined ? 'lossless' : `lossless ${name}`;
    const see = error instanceof UsageError ? `; see '${prefix} --help'` : '';
    context.stderr.write(`${prefix}: ${error.code}: ${error.message}${see}\n`);
    return error.exitCode;
  }
}

/** `lossless --help [command]` and `lossless --version`. */
function topLevel(argv: readonly string[], context: CliContext): number {
  const { values, positionals } = parsing(() =>
    parseArgs({
      args: [...argv],
      options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
      strict: true,
      allowPositionals: true,
    }),
  );
  if (values.version === true && values.help !== true) {
    context.stdout.write(`${VERSION}\n`);
    return EXIT.ok;
  }
  const [topic, ...extra] = positionals;
  if (values.help !== true)
    throw new UsageError(topic === undefined ? 'missing command' : `unexpected argument '${topic}'`);
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (topic !== undefined && !COMMANDS.has(topic)) throw new UsageError(`unknown command '${topic}'`);
  context.stdout.write(HELP[(topic ?? 'lossless') as HelpTopic]);
  return EXIT.ok;
}
