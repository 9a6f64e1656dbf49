// The errors the lossless command reports before it gets to talk to anything: each has a stable
// `code` (listed in docs/errors.md) and the exit code the command ends with.

export class CliError extends Error {
  readonly code: string;
  readonly exitCode: number;

  constructor(code: string, message: string, exitCode: number) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** An unknown command or option, a missing or malformed value. */
export class UsageError extends CliError {
  declare readonly code: 'LOSSLESS_ERR_CLI_USAGE';
  constructor(message: string) {
    super('LOSSLESS_ERR_CLI_USAGE', message, EXIT.usage);
  }
}

/** `lossless demo` or `lossless bench` run outside a clone of the lossless repository. */
export class NoDemoError extends CliError {
  declare readonly code: 'LOSSLESS_ERR_CLI_NO_DEMO';
  constructor(what: string, hint: string) {
    super(
      'LOSSLESS_ERR_CLI_NO_DEMO',
      `${what} ships with the lossless repository; clone it and run \`${hint}\``,
      EXIT.usage,
    );
  }
}

/** Exit codes of the lossless command (docs/cli.md). */
export const EXIT = {
  ok: 0,
  usage: 2,
  timeout: 3,
  unreachable: 4,
  refused: 5,
} as const;
