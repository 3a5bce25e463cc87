import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Kysely } from 'kysely';
import { pingDatabase } from '../db/database.js';
import type { Database } from '../db/types.js';
import { withTimeout } from '../lib/concurrency.js';
import { noteDatabaseUnavailable } from './database-errors.js';
import { errorResponses } from './schema-helpers.js';

const Ok = Type.Object({ status: Type.Literal('ok') });

/**
 * How long readiness waits for the database (a free connection and `select 1`), whatever
 * DATABASE_CONNECT_TIMEOUT_MS and DATABASE_STATEMENT_TIMEOUT_MS say: a probe must learn within
 * its own timeout that the database does not answer.
 */
export const READINESS_TIMEOUT_MS = 1000;

const readinessBody = (database: unknown, storage: unknown) => {
  const problems = [
    ...(database ? ['the database does not answer'] : []),
    ...(storage
      ? [`object storage cannot be used: ${storage instanceof Error ? storage.message : String(storage)}`]
      : []),
  ];
  const message = problems.join('; ');
  return {
    detail: {
      code: 'service_unavailable',
      message: `${message.charAt(0).toUpperCase()}${message.slice(1)}.`,
      details: { database: database ? 'unavailable' : 'ok', object_storage: storage ? 'unavailable' : 'ok' },
    },
  };
};

/**
 * Liveness answers while the process runs; readiness also needs the database and object storage
 * (its bucket exists and answers, its folder can be written), each within READINESS_TIMEOUT_MS,
 * and says which one is missing.
 */
export const healthRoutes: FastifyPluginAsyncTypebox<{
  db: Kysely<Database>;
  checkStorage: (signal: AbortSignal) => Promise<void>;
}> = async (app, { db, checkStorage }) => {
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness', tags: ['health'], response: { 200: Ok } } },
    async () => ({ status: 'ok' as const }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: the database and object storage answer',
        tags: ['health'],
        response: { 200: Ok, ...errorResponses(503) },
      },
    },
    async (request, reply) => {
      const failure = (error: unknown) => error ?? new Error('failed');
      const [database, storage] = await Promise.all([
        pingDatabase(db, { timeoutMs: READINESS_TIMEOUT_MS }).then(() => undefined, failure),
        withTimeout(checkStorage, READINESS_TIMEOUT_MS).then(() => undefined, failure),
      ]);
      if (!database && !storage) return { status: 'ok' as const };
      // Answered here rather than thrown: the error handler would log a stack for every probe.
      if (database) noteDatabaseUnavailable(request, reply, database);
      return reply.status(503).send(readinessBody(database, storage));
    },
  );
};
