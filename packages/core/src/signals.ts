// Start-up checks for the ways SIGTERM fails to reach node in a container: node running as PID 1
// with no init, or node started through npm or a shell that does not forward signals.

import { readFileSync } from 'node:fs';

export interface StartupWarning {
  readonly code: string;
  readonly message: string;
}

export interface ProcessFacts {
  readonly pid: number;
  readonly ppid: number;
  readonly platform: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Name of a process by pid (Linux: /proc/<pid>/comm), undefined when unknown. */
  readonly commOf: (pid: number) => string | undefined;
}

const SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'zsh']);

export function startupWarnings(facts: ProcessFacts = currentProcess()): StartupWarning[] {
  const warnings: StartupWarning[] = [];
  if (facts.pid === 1) {
    warnings.push({
      code: 'LOSSLESS_WARN_PID1',
      message:
        'node runs as PID 1 without an init: signals are still handled by lossless, but zombie processes are not reaped; run node through an init (docker run --init, tini, dumb-init) or shareProcessNamespace',
    });
  }
  if (facts.env.npm_lifecycle_event !== undefined && facts.ppid === 1) {
    warnings.push({
      code: 'LOSSLESS_WARN_NPM_PID1',
      message: `node was started by "npm run ${facts.env.npm_lifecycle_event}" as the container's PID 1: npm may not forward SIGTERM, so the drain may never start; start node directly (CMD ["node", "server.js"])`,
    });
  } else if (facts.platform === 'linux' && facts.ppid === 1) {
    const parent = facts.commOf(1);
    if (parent !== undefined && SHELLS.has(parent)) {
      warnings.push({
        code: 'LOSSLESS_WARN_SHELL_PID1',
        message: `node's parent is a shell (${parent}) running as PID 1: it will not forward SIGTERM, so the drain may never start; use "exec node ..." in the script or an exec-form CMD`,
      });
    }
  }
  return warnings;
}

function currentProcess(): ProcessFacts {
  return {
    pid: process.pid,
    ppid: process.ppid,
    platform: process.platform,
    env: process.env,
    commOf: (pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        return undefined;
      }
    },
  };
}
