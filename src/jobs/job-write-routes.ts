import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { normaliseEndpoint } from '../domain/endpoints.js';
import { AppError } from '../domain/errors.js';
import { JobSchema } from '../domain/job-shape.js';
import { ownOrganization } from '../http/caller.js';
import { errorResponses } from '../http/schema-helpers.js';
import { checkEndpointRequirements } from './endpoint-requirements.js';
import type { JobContext } from './job-context.js';
import { createJob } from './job-creator.js';
import { cancel, retry } from './job-lifecycle.js';
import { AccessTokenQuerySchema, JobParamsSchema } from './job-schemas.js';
import { lightweightView } from './job-view.js';
import { CreateJobBodySchema, CreateJobHeadersSchema } from './job-write-schemas.js';

/** POST /v1/jobs, /v1/jobs/{job_id}/cancel and /v1/jobs/{job_id}/retry. */
export const jobWriteRoutes: FastifyPluginAsyncTypebox<{ ctx: JobContext }> = async (app, { ctx }) => {
  app.post(
    '/jobs',
    {
      schema: {
        summary: 'Create a job',
        description:
          'Validates the request for its endpoint, stores large data: URLs in object storage, and answers the queued job (lightweight: request and response null). 201 for a new job; with an Idempotency-Key already used by this organization with the same body, 200 and the original job (header Idempotent-Replayed: true); with a different body, 409.',
        tags: ['jobs'],
        headers: CreateJobHeadersSchema,
        querystring: AccessTokenQuerySchema,
        body: CreateJobBodySchema,
        response: {
          200: JobSchema,
          201: JobSchema,
          ...errorResponses(400, 401, 403, 409, 413, 415, 422, 503),
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const endpoint = normaliseEndpoint(body.endpoint, ctx.endpoints);
      if (!endpoint) {
        throw new AppError(
          'unprocessable_entity',
          `Invalid body field 'endpoint': '${body.endpoint}' is not a known endpoint.`,
          {
            field: 'endpoint',
            allowed: [...ctx.endpoints],
          },
        );
      }
      checkEndpointRequirements(endpoint, body.request);
      const { maxAttemptsLimit } = ctx.config;
      if (body.max_attempts !== undefined && body.max_attempts > maxAttemptsLimit) {
        throw new AppError('unprocessable_entity', `'max_attempts' must be at most ${maxAttemptsLimit}.`, {
          field: 'max_attempts',
        });
      }
      const result = await createJob(ctx, {
        organizationId: ownOrganization(request),
        endpoint,
        request: body.request,
        metadata: body.metadata ?? null,
        idempotencyKey: request.headers['idempotency-key'],
        maxAttempts: body.max_attempts,
      });
      if (!result.created) reply.header('idempotent-replayed', 'true');
      return reply.status(result.created ? 201 : 200).send(lightweightView(result.row));
    },
  );

  app.post(
    '/jobs/:job_id/cancel',
    {
      schema: {
        summary: 'Cancel a job',
        description:
          'A validating or queued job becomes cancelled at once. A running job gets cancelled: true and stays in_progress until its worker stops at its next heartbeat. A terminal job, or one already being cancelled, answers 409.',
        tags: ['jobs'],
        params: JobParamsSchema,
        querystring: AccessTokenQuerySchema,
        response: { 200: JobSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => lightweightView(await cancel(ctx, ownOrganization(request), request.params.job_id)),
  );

  app.post(
    '/jobs/:job_id/retry',
    {
      schema: {
        summary: 'Retry a job',
        description:
          'A failed or cancelled job goes back to queued under the same id; attempt_count and last_failure_code are kept. Any other status answers 409.',
        tags: ['jobs'],
        params: JobParamsSchema,
        querystring: AccessTokenQuerySchema,
        response: { 200: JobSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => lightweightView(await retry(ctx, ownOrganization(request), request.params.job_id)),
  );
};
