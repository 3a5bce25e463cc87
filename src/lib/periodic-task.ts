import type { FastifyBaseLogger } from 'fastify';

export interface PeriodicTask {
  /** Runs the task once now (tests, and the first tick); resolves when that run ends. */
  runNow(): Promise<void>;
  /** Stops scheduling and waits for a run in progress to end. */
  stop(): Promise<void>;
}

/**
 * Runs `run` every `intervalMs`, never two at once in this process. Runs in other processes
 * may overlap: each task must be safe for that (SKIP LOCKED, conditional updates). A failing
 * run is logged and retried at the next tick, so a database restart only delays the work.
 */
export function startPeriodicTask(options: {
  name: string;
  intervalMs: number;
  run: () => Promise<unknown>;
  logger: FastifyBaseLogger;
  /** Reports a failed run instead of the default error line (e.g. an outage already reported once). */
  onError?: (error: unknown, task: string) => void;
}): PeriodicTask {
  let current: Promise<void> | undefined;
  let stopped = false;
  const runOnce = () => {
    current ??= (async () => {
      try {
        await options.run();
      } catch (error) {
        if (options.onError) options.onError(error, options.name);
        else
          options.logger.error(
            { err: error, task: options.name },
            `${options.name} failed; retrying at the next tick`,
          );
      } finally {
        current = undefined;
      }
    })();
    return current;
  };
  const timer = setInterval(() => {
    if (!stopped) void runOnce();
  }, options.intervalMs);
  timer.unref();
  return {
    runNow: runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await current;
    },
  };
}
