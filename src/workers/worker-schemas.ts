import { type Static, Type } from '@sinclair/typebox';
import {
  JobResponseSchema,
  JobSchema,
  ProblemSchema,
  ReportedErrorSchema,
  UnixSeconds,
} from '../domain/job-shape.js';

export const MAX_CLAIM_LIMIT = 100;
export const MAX_WAIT_SECONDS = 30;

const LeaseToken = Type.String({
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  description: 'The token the claim answered for this job; proves the caller still holds the lease.',
});

const WorkerId = Type.String({
  minLength: 1,
  maxLength: 200,
  description: 'A name for the worker process (host, pid, …): recorded on the job and its attempts.',
});

const leaseSeconds = (maxLeaseSeconds: number, defaultLeaseSeconds: number) =>
  Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: maxLeaseSeconds,
      description: `How long the lease lasts from now, in seconds (default ${defaultLeaseSeconds}). Without a heartbeat before it runs out, the job is taken back.`,
    }),
  );

/** Bodies whose bounds come from the configuration. */
export function leaseBodySchemas(limits: { maxLeaseSeconds: number; defaultLeaseSeconds: number }) {
  const ClaimBody = Type.Object({
    worker_id: WorkerId,
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_CLAIM_LIMIT, default: 1, description: 'Most jobs to claim.' }),
    ),
    endpoints: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
        minItems: 1,
        maxItems: 100,
        description: "Claim only jobs for these endpoints ('/v1' prefix optional). Default: every endpoint.",
      }),
    ),
    organization_ids: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
        minItems: 1,
        maxItems: 1000,
        description:
          "Fleet keys: claim only these organizations' jobs (e.g. workers dedicated to one customer). Default: every organization's, served in turn.",
      }),
    ),
    lease_seconds: leaseSeconds(limits.maxLeaseSeconds, limits.defaultLeaseSeconds),
    wait_seconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_WAIT_SECONDS,
        default: 0,
        description:
          'With no runnable job, wait up to this long for one to be queued instead of answering an empty list at once.',
      }),
    ),
  });
  const HeartbeatBody = Type.Object({
    lease_token: LeaseToken,
    lease_seconds: leaseSeconds(limits.maxLeaseSeconds, limits.defaultLeaseSeconds),
  });
  return { ClaimBody, HeartbeatBody };
}

export type ClaimBody = Static<ReturnType<typeof leaseBodySchemas>['ClaimBody']>;
export type HeartbeatBody = Static<ReturnType<typeof leaseBodySchemas>['HeartbeatBody']>;

export const ClaimedJobSchema = Type.Object({
  job: JobSchema,
  lease_token: LeaseToken,
  lease_expires_at: UnixSeconds,
});

export const ClaimResponseSchema = Type.Object(
  { object: Type.Literal('list'), data: Type.Array(ClaimedJobSchema) },
  {
    description:
      'The claimed jobs, oldest first, each with its restored request; empty when none was runnable.',
  },
);

export const HeartbeatResponseSchema = Type.Object({
  cancel_requested: Type.Boolean({
    description: 'The client asked to cancel: stop, then report with POST .../cancelled.',
  }),
  lease_expires_at: UnixSeconds,
});

export const LeaseTokenBody = Type.Object({ lease_token: LeaseToken });

export const CompleteBody = Type.Object({
  lease_token: LeaseToken,
  response: Type.Object(
    {
      status_code: Type.Integer({ minimum: 100, maximum: 599 }),
      body: Type.Record(Type.String(), Type.Unknown(), {
        description:
          'What the endpoint answered: a JSON object, as clients of the job object expect; large data: URLs go to object storage.',
      }),
    },
    { description: JobResponseSchema.description },
  ),
  warnings: Type.Optional(Type.Array(ProblemSchema, { maxItems: 100 })),
});

export const FailBody = Type.Object({
  lease_token: LeaseToken,
  error: ReportedErrorSchema,
  retryable: Type.Boolean({
    description: 'Try again later (after a backoff, while attempts remain), or fail the job now.',
  }),
});

export type CompleteInput = Static<typeof CompleteBody>;
export type FailInput = Static<typeof FailBody>;
