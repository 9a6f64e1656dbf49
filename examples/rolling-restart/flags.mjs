// Command-line flags of the rolling-restart scripts: node:util's parseArgs plus --help, where a wrong
// flag (unknown, missing its value, a stray argument) prints the message, which names the flag, and
// the usage on stderr and exits with code 2, instead of a stack trace.

import { parseArgs } from 'node:util';

/**
 * @param {import('node:util').ParseArgsConfig['options']} options
 * @param {string} usage printed for --help (on stdout, exit 0) and after a wrong flag (stderr, exit 2)
 */
export function flags(options, usage) {
  let values;
  try {
    ({ values } = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h', default: false } } }));
  } catch (error) {
    if (!String(error?.code).startsWith('ERR_PARSE_ARGS')) throw error;
    // "Unknown option '--duration'. To specify a positional argument starting with a '-', ...": the
    // first sentence says what is wrong
    usageError(error.message.split('. ')[0], usage);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  return values;
}

/** A bad flag or flag value: the message and the usage on stderr, exit code 2. */
export function usageError(message, usage) {
  console.error(`${message}\n\n${usage}`);
  process.exit(2);
}
