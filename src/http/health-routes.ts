import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Kysely } from 'kysely';
import { pingDatabase } from '../db/database.js';
import type { Database } from '../db/types.js';
import { AppError } from '../domain/errors.js';
import { errorResponses } from './schema-helpers.js';

const Ok = Type.Object({ status: Type.Literal('ok') });

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
    async () => {
      try {
        await pingDatabase(db);
      } catch {
        throw new AppError('service_unavailable', 'The database does not answer.');
      }
      return { status: 'ok' as const };
    },
  );
};
