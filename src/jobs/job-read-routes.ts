import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errorResponses, isTrue } from '../http/schema-helpers.js';
import { type JobReaderDeps, readJob, readJobStatus } from './job-reader.js';
import {
  JobParamsSchema,
  JobSchema,
  JobStatusSchema,
  RetrieveQuerySchema,
  StatusQuerySchema,
} from './job-schemas.js';

/** GET /v1/jobs/{job_id} and GET /v1/jobs/{job_id}/status. */
export const jobReadRoutes: FastifyPluginAsyncTypebox<{ deps: JobReaderDeps }> = async (app, { deps }) => {
  app.get(
    '/jobs/:job_id',
    {
      schema: {
        summary: 'Retrieve a job',
        description:
          'Lightweight by default (request and response null, no storage access). include_request / include_response restore the offloaded payloads; an artifact that cannot be restored is null and adds a warning.',
        tags: ['jobs'],
        params: JobParamsSchema,
        querystring: RetrieveQuerySchema,
        response: { 200: JobSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const include = {
        request: isTrue(request.query.include_request),
        response: isTrue(request.query.include_response),
      };
      return readJob(deps, request.auth.organizationId, request.params.job_id, include);
    },
  );

  app.get(
    '/jobs/:job_id/status',
    {
      schema: {
        summary: 'Poll a job',
        description: 'Lifecycle fields only; never reads payloads or object storage.',
        tags: ['jobs'],
        params: JobParamsSchema,
        querystring: StatusQuerySchema,
        response: { 200: JobStatusSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => readJobStatus(deps.db, request.auth.organizationId, request.params.job_id),
  );
};
