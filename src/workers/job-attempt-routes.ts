import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Kysely } from 'kysely';
import type { Database } from '../db/types.js';
import { errorResponses } from '../http/schema-helpers.js';
import { AccessTokenQuerySchema, JobParamsSchema } from '../jobs/job-schemas.js';
import { readJobAttempts } from './job-attempts.js';
import { JobAttemptListSchema } from './worker-schemas.js';

/** GET /v1/jobs/{job_id}/attempts, for clients. */
export const jobAttemptRoutes: FastifyPluginAsyncTypebox<{ db: Kysely<Database> }> = async (app, { db }) => {
  app.get(
    '/jobs/:job_id/attempts',
    {
      schema: {
        summary: 'List the attempts of a job',
        description:
          'One entry per time a worker claimed the job: which worker, when it started and finished, and how it ended (succeeded, failed with its error, lease_expired, cancelled, released; null while running). attempt_count of the job equals the number of entries.',
        tags: ['jobs'],
        params: JobParamsSchema,
        querystring: AccessTokenQuerySchema,
        response: { 200: JobAttemptListSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => ({
      object: 'list' as const,
      data: await readJobAttempts(db, request.auth.organizationId, request.params.job_id),
    }),
  );
};
