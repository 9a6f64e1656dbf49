// Runs an async step under a deadline. The step gets an AbortSignal that fires at the deadline or
// when the outer signal aborts, so well-behaved steps stop their work instead of running on.

export class DeadlineError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`deadline of ${timeoutMs} ms passed`);
  }
}

export async function withDeadline<T>(
  step: (signal: AbortSignal) => T | Promise<T>,
  timeoutMs: number,
  outer?: AbortSignal,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const onOuterAbort = (): void => controller.abort(outer?.reason);
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  try {
    return await Promise.race([
      Promise.resolve().then(() => step(controller.signal)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const error = new DeadlineError(timeoutMs);
          controller.abort(error);
          reject(error);
        }, timeoutMs);
        timer.unref();
        if (outer?.aborted) reject(outer.reason);
        else outer?.addEventListener('abort', () => reject(outer.reason), { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuterAbort);
  }
}
