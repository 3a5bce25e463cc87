import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { JobSchema, JobStatusSchema } from '../domain/job-shape.js';
import { ownOrganization } from '../http/caller.js';
import { errorResponses, isTrue } from '../http/schema-helpers.js';
import type { JobContext } from './job-context.js';
import { readJob } from './job-reader.js';
import {
  JobParamsSchema,
  RetrieveQuerySchema,
  StatusHeadersSchema,
  StatusQuerySchema,
} from './job-schemas.js';
import { createStatusRereader } from './status-rereads.js';
import { createWaitScopes, readStatusAnswer } from './status-wait.js';

const NEVER_ABORTED = new AbortController().signal;

/** GET /v1/jobs/{job_id} and GET /v1/jobs/{job_id}/status. */
export const jobReadRoutes: FastifyPluginAsyncTypebox<{ ctx: JobContext }> = async (app, { ctx }) => {
  // Long polls answer at once when the server starts closing, instead of holding up shutdown.
  const waits = createWaitScopes();
  const reread = createStatusRereader(ctx.db);
  app.addHook('preClose', async () => waits.abortAll());

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
      return readJob(ctx, ownOrganization(request), request.params.job_id, include, request.log);
    },
  );

  app.get(
    '/jobs/:job_id/status',
    {
      schema: {
        summary: 'Poll a job',
        description:
          'Lifecycle fields only; never reads payloads or object storage. Every answer carries an ETag of the state; If-None-Match with the current one answers 304 without a body. wait_seconds=N holds the answer until the job leaves the state the client has (the If-None-Match one, else the one current on arrival), at most N seconds, then answers the current state (200, or 304 when it still matches If-None-Match). A terminal job answers at once. The wait is woken by database notifications of status and cancellation changes, so a waiting request runs no query.',
        tags: ['jobs'],
        params: JobParamsSchema,
        querystring: StatusQuerySchema,
        headers: StatusHeadersSchema,
        response: {
          200: JobStatusSchema,
          // No body: `type: null` is how @fastify/swagger documents an empty answer.
          304: Type.Unsafe<void>({
            type: 'null',
            description: 'The job is still in the state of If-None-Match.',
          }),
          ...errorResponses(400, 401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      const answer = await readStatusAnswer(
        { db: ctx.db, listener: ctx.listener, reread },
        {
          organizationId: ownOrganization(request),
          jobId: request.params.job_id,
          waitSeconds: request.query.wait_seconds ?? 0,
          ifNoneMatch: request.headers['if-none-match'],
          // A scope (AbortController + close listener, and a DOMException when it aborts) only for a wait.
          signal: (request.query.wait_seconds ?? 0) > 0 ? waits.open(reply.raw) : NEVER_ABORTED,
        },
      );
      reply.header('etag', answer.etag);
      if (answer.notModified) return reply.code(304).send();
      return answer.view;
    },
  );
};
