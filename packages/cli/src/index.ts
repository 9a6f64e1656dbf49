// @lossless/cli: the `lossless` command (bin.ts), and its commands as functions for other tools.

export type { AdminAnswer } from './admin.js';
export { callAdmin } from './admin.js';
export { prestopCommand } from './commands/prestop.js';
export type { Script } from './commands/scripts.js';
export { BENCHMARKS, benchCommand, DEMO_SCRIPT, demoCommand, findRepository } from './commands/scripts.js';
export { formatStatus, statusCommand } from './commands/status.js';
export type { CliContext, Output } from './context.js';
export { createContext, runNode } from './context.js';
export { CliError, EXIT, NoDemoError, UsageError } from './errors.js';
export { main } from './main.js';
export { VERSION } from './version.js';
