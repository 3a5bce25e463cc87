import { type Static, Type } from '@sinclair/typebox';
import { BUILTIN_ENDPOINTS } from './endpoints.js';
import { JOB_ID_PATTERN } from './ids.js';
import { JOB_STATUSES } from './job-statuses.js';
import { Nullable, StringEnum, StringMap } from './schema-types.js';

/**
 * The job object, declared once. The route schemas, the OpenAPI document, the TypeScript types,
 * the column lists the repositories select (db/job-columns.ts) and the row-to-object mapping
 * (jobs/job-view.ts) all come from these two schemas; the SDK's types are checked against them
 * at compile time (test/sdk/sdk-types-match.ts). A new field starts here.
 */

export const UnixSeconds = Type.Integer({ description: 'Unix timestamp, seconds.' });

const problemFields = {
  code: Type.String(),
  message: Type.String(),
  details: Type.Optional(Nullable(StringMap(Type.Unknown()))),
};

/** A job's error, or one of its warnings: `{code, message, details?}`. */
export const ProblemSchema = Type.Object(problemFields);
export type Problem = Static<typeof ProblemSchema>;

export const JobErrorSchema = Type.Object(problemFields, { description: 'Why the job failed.' });

/** The error a worker reports, with the bounds of that input; attempts answer it as recorded. */
export const ReportedErrorSchema = Type.Object({
  code: Type.String({ minLength: 1, maxLength: 100, description: 'A stable machine-readable code.' }),
  message: Type.String({ maxLength: 10_000 }),
  details: problemFields.details,
});

export const JobResponseSchema = Type.Object(
  { status_code: Type.Integer(), body: Type.Unknown() },
  { description: 'What the endpoint answered, stored when the job completed.' },
);

export const MetadataSchema = StringMap(Type.String({ maxLength: 512 }), {
  description: 'User metadata: at most 16 pairs, keys up to 64 and values up to 512 characters.',
});

export const JobIdSchema = Type.String({
  pattern: JOB_ID_PATTERN,
  description: "A job id: 'job_' followed by 21 characters of A-Z, a-z, 0-9, '_' and '-'.",
  examples: ['job_V1StGXR8_Z5jdHi6B-myT'],
});

const lifecycleFields = {
  id: JobIdSchema,
  object: Type.Literal('job'),
  status: StringEnum(JOB_STATUSES),
  endpoint: Type.String({ examples: [...BUILTIN_ENDPOINTS] }),
  error: Nullable(JobErrorSchema),
  warnings: Nullable(Type.Array(ProblemSchema)),
  created_at: UnixSeconds,
  started_at: Nullable(UnixSeconds),
  completed_at: Nullable(UnixSeconds),
  expires_at: UnixSeconds,
  organization_id: Type.String(),
  metadata: Nullable(MetadataSchema),
  cancelled: Type.Boolean({ description: 'The client asked for cancellation (distinct from status).' }),
  attempt_count: Type.Integer({ minimum: 0 }),
  last_attempt_at: Nullable(UnixSeconds),
  last_failure_code: Nullable(Type.String()),
};

/** What the status route answers: the lifecycle fields only. */
export const JobStatusSchema = Type.Object(lifecycleFields, {
  description: 'Lifecycle fields only: the cheap answer for polling.',
});

/** The whole job object: the lifecycle fields and the payload fields. */
export const JobSchema = Type.Object(
  {
    ...lifecycleFields,
    request: Type.Unknown({ description: 'The original request body; null unless include_request=true.' }),
    response: Nullable(JobResponseSchema),
    cloud_task_name: Nullable(Type.String()),
    request_gcs_paths: Nullable(
      StringMap(Type.String(), {
        description: 'JSON pointer -> storage URI of each offloaded request artifact.',
      }),
    ),
  },
  { description: 'An asynchronous job.' },
);

export type JobView = Static<typeof JobSchema>;
export type JobStatusView = Static<typeof JobStatusSchema>;

/** Field names in the order the object is written. */
export const JOB_STATUS_FIELDS = Object.keys(JobStatusSchema.properties) as (keyof JobStatusView)[];
export const JOB_FIELDS = Object.keys(JobSchema.properties) as (keyof JobView)[];
