import { type Static, Type } from '@sinclair/typebox';
import { ATTEMPT_OUTCOMES } from '../domain/attempt-outcomes.js';
import { JobIdSchema, ReportedErrorSchema, UnixSeconds } from '../domain/job-shape.js';
import { Nullable, StringEnum } from '../domain/schema-types.js';
import { QueryBoolean } from '../http/schema-helpers.js';

/** Parameters, query strings and headers of the client routes; the job object is domain/job-shape.ts. */

export const JobParamsSchema = Type.Object({ job_id: JobIdSchema });

const AccessToken = Type.Optional(
  Type.String({ description: 'The API key, for callers that cannot set headers.' }),
);

export const RetrieveQuerySchema = Type.Object({
  include_request: Type.Optional(QueryBoolean('Restore and include the original request.')),
  include_response: Type.Optional(QueryBoolean('Restore and include the response of a completed job.')),
  access_token: AccessToken,
});

/** Routes whose only query parameter is the credential. */
export const AccessTokenQuerySchema = Type.Object({ access_token: AccessToken });

export const StatusQuerySchema = Type.Object({
  wait_seconds: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 60,
      default: 0,
      description:
        'Long poll: hold the answer up to this many seconds until the job leaves the state the client has (the one its If-None-Match names, else the one current when the request arrived). A terminal job answers at once.',
    }),
  ),
  access_token: AccessToken,
});

export const StatusHeadersSchema = Type.Object({
  'if-none-match': Type.Optional(
    Type.String({
      description: 'An ETag of an earlier status answer: 304 while the job is still in that state.',
    }),
  ),
});

export const JobAttemptSchema = Type.Object({
  object: Type.Literal('job.attempt'),
  attempt: Type.Integer({ minimum: 1, description: 'The number of the claim: 1 for the first.' }),
  worker_id: Type.String(),
  started_at: UnixSeconds,
  finished_at: Nullable(UnixSeconds),
  outcome: Nullable(
    StringEnum(ATTEMPT_OUTCOMES, {
      description:
        'null while running; succeeded, failed, lease_expired (the worker stopped heartbeating), cancelled (the worker acknowledged a cancellation), released (handed back; does not use up an attempt), expired (the job reached its expires_at while running).',
    }),
  ),
  error: Nullable(ReportedErrorSchema),
});

export const JobAttemptListSchema = Type.Object(
  { object: Type.Literal('list'), data: Type.Array(JobAttemptSchema) },
  { description: 'Every execution of the job, first to last.' },
);

export type JobAttemptView = Static<typeof JobAttemptSchema>;
