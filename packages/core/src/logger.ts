// A pino-compatible logger interface, and the logger used when none is given: quiet about routine
// events, but every warning and error reaches stderr as one line, as Node's own warnings do.

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child?(bindings: object): Logger;
}

const noop = (): void => {};

/** Discards everything: pass it as `logger` to silence lossless. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** Past this, a line's fields are cut: one line must stay one line in a terminal or a log collector. */
const MAX_FIELDS = 600;

/**
 * A logger that drops debug and info and writes each warning and error as one line,
 * `lossless <level> <code>: <message> {fields}`, with `write` (default: to stderr).
 */
export function createStderrLogger(write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const make = (bindings: object): Logger => {
    const at = (level: 'warn' | 'error') => (obj: object, msg?: string) => {
      write(formatLine(level, { ...bindings, ...obj }, msg));
    };
    return {
      debug: noop,
      info: noop,
      warn: at('warn'),
      error: at('error'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return make({});
}

/** The default logger: warnings and errors to stderr, one line each. */
export const stderrLogger: Logger = createStderrLogger();

/** `lossless warn LOSSLESS_ERR_REGISTRY: registration failed, retrying {"service":"orders","attempt":2,"err":"..."}` */
export function formatLine(level: string, fields: Record<string, unknown>, msg: string | undefined): string {
  const { code, component: _component, err, ...rest } = fields;
  const error = err instanceof Error ? err : undefined;
  const message = msg ?? error?.message ?? '';
  const errorCode = (error as { code?: unknown } | undefined)?.code;
  const codeText = typeof code === 'string' ? ` ${code}` : typeof errorCode === 'string' ? ` ${errorCode}` : '';
  // the error's message is the line's message when there is none, and is not repeated when the line says it
  const errText = error?.message ?? err;
  const repeated = err === undefined || (typeof errText === 'string' && message.includes(errText));
  const extra = repeated ? rest : { ...rest, err: errText };
  let json = Object.keys(extra).length === 0 ? '' : safeJson(extra);
  if (json.length > MAX_FIELDS) json = `${json.slice(0, MAX_FIELDS)}…`;
  return `lossless ${level}${codeText}: ${oneLine(message)}${json === '' ? '' : ` ${json}`}\n`;
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ');
}

function safeJson(value: object): string {
  try {
    return oneLine(
      JSON.stringify(value, (_key, v: unknown) =>
        typeof v === 'bigint' ? String(v) : v instanceof Error ? v.message : v,
      ),
    );
  } catch {
    return '{}';
  }
}
