import type { FastifyReply, FastifyRequest } from 'fastify';
import { describeDatabaseError, isDatabaseUnreachable, isStatementCancelled } from '../db/database-errors.js';
import type { DatabaseHealth } from '../db/database-health.js';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The database's reachability as the pool sees it (`plugins/database.ts`); it logs each
     * outage once. Absent in an app built without that plugin.
     */
    databaseHealth?: DatabaseHealth;
  }
}

/**
 * The database cannot serve the request now: it is unreachable or does not answer (see
 * isDatabaseUnreachable), or the statement ran past statement_timeout. The request answers 503.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  return isDatabaseUnreachable(error) || isStatementCancelled(error);
}

/**
 * Logs the failure behind a 503 without its stack. An outage is logged once, when it begins, by
 * the health tracker (and every request it fails only adds its response line); a statement that
 * ran out of time is one warning for its request.
 */
export function noteDatabaseUnavailable(request: FastifyRequest, reply: FastifyReply, error: unknown): void {
  const health = request.server.databaseHealth;
  if (health && isDatabaseUnreachable(error)) {
    health.failed(error, performance.now() - reply.elapsedTime);
    return;
  }
  request.log.warn({ reason: describeDatabaseError(error) }, 'database unavailable');
}
