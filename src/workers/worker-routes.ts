import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { normaliseEndpoint } from '../domain/endpoints.js';
import { AppError } from '../domain/errors.js';
import { JobSchema } from '../domain/job-shape.js';
import { errorResponses } from '../http/schema-helpers.js';
import type { JobContext } from '../jobs/job-context.js';
import { JobParamsSchema } from '../jobs/job-schemas.js';
import { claimJobs } from './job-claimer.js';
import { createLimitedOrganizations } from './limited-organizations.js';
import { acknowledgeCancel, complete, fail, heartbeat, release } from './worker-reports.js';
import {
  ClaimResponseSchema,
  CompleteBody,
  FailBody,
  HeartbeatResponseSchema,
  LeaseTokenBody,
  leaseBodySchemas,
} from './worker-schemas.js';

function normaliseEndpoints(requested: readonly string[] | undefined, allowed: ReadonlySet<string>) {
  if (requested === undefined) return null;
  const stored = new Set<string>();
  for (const endpoint of requested) {
    const normalised = normaliseEndpoint(endpoint, allowed);
    if (!normalised) {
      throw new AppError('invalid_request', `Unknown endpoint '${endpoint}' in endpoints.`, {
        field: 'endpoints',
        allowed: [...allowed],
      });
    }
    stored.add(normalised);
  }
  return [...stored];
}

/**
 * Whose jobs a claim may take: its own organization's for an organization's key; for a fleet
 * key, every organization's, or those of `organization_ids` when it names some.
 */
function claimedOrganizations(
  own: string | null,
  asked: readonly string[] | undefined,
): readonly string[] | null {
  if (own === null) return asked === undefined ? null : [...new Set(asked)];
  if (asked !== undefined && asked.some((id) => id !== own)) {
    throw new AppError(
      'invalid_request',
      "Invalid body field 'organization_ids': only a fleet key may claim the jobs of other organizations.",
      { location: 'body', field: 'organization_ids' },
    );
  }
  return [own];
}

/** The worker protocol: claim, heartbeat, and one report per claimed job. Mounted at /v1/worker. */
export const workerRoutes: FastifyPluginAsyncTypebox<{ ctx: JobContext }> = async (app, { ctx }) => {
  const { leaseSeconds, maxLeaseSeconds } = ctx.config;
  const { ClaimBody, HeartbeatBody } = leaseBodySchemas({
    maxLeaseSeconds,
    defaultLeaseSeconds: leaseSeconds,
  });
  const tags = ['worker'];
  const limits = createLimitedOrganizations(ctx.db);
  const reportErrors = errorResponses(400, 401, 403, 404, 409);

  // Waiting claims end at shutdown instead of holding it up for their whole wait.
  const waiting = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const controller of waiting) controller.abort();
  });

  app.post(
    '/claim',
    {
      schema: {
        summary: 'Claim queued jobs',
        description:
          "Leases up to `limit` of the organization's oldest runnable queued jobs and answers each with its restored request and a lease_token that every later call for the job must carry. With none runnable, answers an empty list at once, or after waiting up to wait_seconds for one to be queued.",
        tags,
        body: ClaimBody,
        response: { 200: ClaimResponseSchema, ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const controller = new AbortController();
      // A client that hangs up stops the wait; 'close' also fires after a normal answer.
      const onClose = () => {
        if (!reply.raw.writableFinished) controller.abort();
      };
      reply.raw.on('close', onClose);
      waiting.add(controller);
      try {
        const data = await claimJobs(
          ctx,
          {
            organizationIds: claimedOrganizations(request.auth.organizationId, body.organization_ids),
            limits,
            workerId: body.worker_id,
            endpoints: normaliseEndpoints(body.endpoints, ctx.endpoints),
            limit: body.limit ?? 1,
            leaseSeconds: body.lease_seconds ?? leaseSeconds,
            waitSeconds: body.wait_seconds ?? 0,
            log: request.log,
          },
          controller.signal,
        );
        return { object: 'list' as const, data };
      } finally {
        waiting.delete(controller);
        reply.raw.off('close', onClose);
      }
    },
  );

  const lease = (
    request: { auth: { organizationId: string | null }; params: { job_id: string } },
    token: string,
  ) => ({
    organizationId: request.auth.organizationId,
    jobId: request.params.job_id,
    leaseToken: token.toLowerCase(),
  });

  app.post(
    '/jobs/:job_id/heartbeat',
    {
      schema: {
        summary: 'Renew a lease',
        description:
          'Extends the lease by lease_seconds from now and says whether the client asked to cancel. A lease that ran out is still renewed while no other worker took the job; after that, 409.',
        tags,
        params: JobParamsSchema,
        body: HeartbeatBody,
        response: { 200: HeartbeatResponseSchema, ...reportErrors },
      },
    },
    async (request) =>
      heartbeat(ctx, lease(request, request.body.lease_token), request.body.lease_seconds ?? leaseSeconds),
  );

  app.post(
    '/jobs/:job_id/complete',
    {
      schema: {
        summary: 'Report a result',
        description:
          'Stores the response (large data: URLs and large bodies go to object storage) and completes the job. 409 when the lease is no longer held: nothing is stored.',
        tags,
        params: JobParamsSchema,
        body: CompleteBody,
        response: { 200: JobSchema, ...reportErrors, ...errorResponses(413, 422, 503) },
      },
    },
    async (request) => complete(ctx, lease(request, request.body.lease_token), request.body),
  );

  app.post(
    '/jobs/:job_id/fail',
    {
      schema: {
        summary: 'Report a failure',
        description:
          'Records the error on the attempt. retryable with attempts left: the job is queued again after an exponential backoff with jitter; otherwise it fails with this error. A job whose cancellation was asked ends cancelled.',
        tags,
        params: JobParamsSchema,
        body: FailBody,
        response: { 200: JobSchema, ...reportErrors },
      },
    },
    async (request) =>
      fail(ctx, lease(request, request.body.lease_token), {
        error: request.body.error,
        retryable: request.body.retryable,
      }),
  );

  app.post(
    '/jobs/:job_id/cancelled',
    {
      schema: {
        summary: 'Acknowledge a cancellation',
        description:
          'After a heartbeat answered cancel_requested: true and the worker stopped, the job ends cancelled. 409 when no cancellation was asked.',
        tags,
        params: JobParamsSchema,
        body: LeaseTokenBody,
        response: { 200: JobSchema, ...reportErrors },
      },
    },
    async (request) => acknowledgeCancel(ctx, lease(request, request.body.lease_token)),
  );

  app.post(
    '/jobs/:job_id/release',
    {
      schema: {
        summary: 'Hand a job back',
        description:
          'For a worker shutting down: the job is queued again at once, and this attempt does not use up one of its attempts (it is listed with outcome released).',
        tags,
        params: JobParamsSchema,
        body: LeaseTokenBody,
        response: { 200: JobSchema, ...reportErrors },
      },
    },
    async (request) => release(ctx, lease(request, request.body.lease_token)),
  );
};
