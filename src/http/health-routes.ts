import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Kysely } from 'kysely';
import { pingDatabase } from '../db/database.js';
import type { Database } from '../db/types.js';
import { noteDatabaseUnavailable } from './database-errors.js';
import { errorResponses } from './schema-helpers.js';

const Ok = Type.Object({ status: Type.Literal('ok') });

/**
 * How long readiness waits for the database (a free connection and `select 1`), whatever
 * DATABASE_CONNECT_TIMEOUT_MS and DATABASE_STATEMENT_TIMEOUT_MS say: a probe must learn within
 * its own timeout that the database does not answer.
 */
export const READINESS_TIMEOUT_MS = 1000;

/** Liveness answers while the process runs; readiness also needs the database. */
export const healthRoutes: FastifyPluginAsyncTypebox<{ db: Kysely<Database> }> = async (app, { db }) => {
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness', tags: ['health'], response: { 200: Ok } } },
    async () => ({ status: 'ok' as const }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: the database answers',
        tags: ['health'],
        response: { 200: Ok, ...errorResponses(503) },
      },
    },
    async (request, reply) => {
      try {
        await pingDatabase(db, { timeoutMs: READINESS_TIMEOUT_MS });
      } catch (error) {
        // Answered here rather than thrown: the error handler would log a stack for every probe.
        noteDatabaseUnavailable(request, reply, error);
        return reply
          .status(503)
          .send({ detail: { code: 'service_unavailable', message: 'The database does not answer.' } });
      }
      return { status: 'ok' as const };
    },
  );
};
