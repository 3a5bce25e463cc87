import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Clock } from '../app.js';
import { AppError } from '../errors.js';
import { errorResponses } from '../http/schema-helpers.js';
import { StorageError } from '../storage/object-store.js';
import { checkEndpointRequirements } from './endpoint-requirements.js';
import { normaliseEndpoint } from './endpoints.js';
import { createJob, type JobCreatorDeps } from './job-creator.js';
import { cancel, retry } from './job-lifecycle.js';
import { AccessTokenQuerySchema, JobParamsSchema, JobSchema } from './job-schemas.js';
import { toJobView } from './job-view.js';
import { CreateJobBodySchema, CreateJobHeadersSchema } from './job-write-schemas.js';

export interface JobWriteDeps extends JobCreatorDeps {
  endpoints: ReadonlySet<string>;
  maxAttemptsLimit: number;
  clock: Clock;
}

const lightweight = (row: Parameters<typeof toJobView>[0]) =>
  toJobView(row, { request: null, response: null, warnings: [] });

/** POST /v1/jobs, /v1/jobs/{job_id}/cancel and /v1/jobs/{job_id}/retry. */
export const jobWriteRoutes: FastifyPluginAsyncTypebox<{ deps: JobWriteDeps }> = async (app, { deps }) => {
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
      const endpoint = normaliseEndpoint(body.endpoint, deps.endpoints);
      if (!endpoint) {
        throw new AppError(
          'unprocessable_entity',
          `Invalid body field 'endpoint': '${body.endpoint}' is not a known endpoint.`,
          {
            field: 'endpoint',
            allowed: [...deps.endpoints],
          },
        );
      }
      checkEndpointRequirements(endpoint, body.request);
      if (body.max_attempts !== undefined && body.max_attempts > deps.maxAttemptsLimit) {
        throw new AppError(
          'unprocessable_entity',
          `'max_attempts' must be at most ${deps.maxAttemptsLimit}.`,
          {
            field: 'max_attempts',
          },
        );
      }
      let result: Awaited<ReturnType<typeof createJob>>;
      try {
        result = await createJob(deps, {
          organizationId: request.auth.organizationId,
          endpoint,
          request: body.request,
          metadata: body.metadata ?? null,
          idempotencyKey: request.headers['idempotency-key'],
          maxAttempts: body.max_attempts,
        });
      } catch (error) {
        if (error instanceof StorageError) {
          request.log.error({ err: error }, 'offloading the request failed');
          throw new AppError(
            'service_unavailable',
            'Object storage is unavailable; the job was not created. Try again.',
          );
        }
        throw error;
      }
      if (!result.created) reply.header('idempotent-replayed', 'true');
      return reply.status(result.created ? 201 : 200).send(lightweight(result.row));
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
    async (request) =>
      lightweight(
        await cancel(deps.db, request.auth.organizationId, request.params.job_id, deps.clock.now()),
      ),
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
    async (request) =>
      lightweight(await retry(deps.db, request.auth.organizationId, request.params.job_id, deps.clock.now())),
  );
};
