import type { FastifyBaseLogger } from 'fastify';
import { describeDatabaseError, isDatabaseUnreachable } from './database-errors.js';

/**
 * Whether the database is reachable, as the pool last saw it. Its only output is the log: one
 * warning when the database goes away and one line when it is back, whatever the number of
 * requests that failed in between (each of which answers 503 without logging a stack).
 */
export interface DatabaseHealth {
  readonly available: boolean;
  /** A new connection was established: the database is back, if it was away. */
  connected(): void;
  /**
   * A database call that began at `startedAt` (performance.now(); default now) failed. An error
   * saying the database is unreachable marks it away; other errors are not this tracker's.
   */
  failed(error: unknown, startedAt?: number): void;
}

export function createDatabaseHealth(
  logger: Pick<FastifyBaseLogger, 'warn' | 'info'>,
  now: () => number = () => performance.now(),
): DatabaseHealth {
  let available = true;
  let awaySince = 0;
  let backAt = Number.NEGATIVE_INFINITY;
  return {
    get available() {
      return available;
    },
    connected() {
      if (available) return;
      available = true;
      backAt = now();
      logger.info({ unavailable_ms: Math.round(backAt - awaySince) }, 'database available again');
    },
    failed(error, startedAt = now()) {
      if (!available || !isDatabaseUnreachable(error)) return;
      // A call that began before the database came back (a checkout queued during the outage)
      // failed on the outage that is over: it says nothing about now.
      if (startedAt < backAt) return;
      available = false;
      awaySince = now();
      logger.warn(
        { reason: describeDatabaseError(error) },
        'database unavailable: requests answer 503 until a new connection succeeds',
      );
    },
  };
}
