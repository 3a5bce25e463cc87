import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ownOrganization } from '../http/caller.js';
import { errorResponses } from '../http/schema-helpers.js';
import { readJobAttempts } from './job-attempts.js';
import type { JobContext } from './job-context.js';
import { AccessTokenQuerySchema, JobAttemptListSchema, JobParamsSchema } from './job-schemas.js';

/** GET /v1/jobs/{job_id}/attempts, for clients. */
export const jobAttemptRoutes: FastifyPluginAsyncTypebox<{ ctx: JobContext }> = async (app, { ctx }) => {
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
      data: await readJobAttempts(ctx, ownOrganization(request), request.params.job_id),
    }),
  );
};
