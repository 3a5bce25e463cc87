import { type Static, Type } from '@sinclair/typebox';
import { Nullable, QueryBoolean, StringEnum } from '../http/schema-helpers.js';
import { JOB_ID_PATTERN } from '../ids.js';
import { BUILTIN_ENDPOINTS } from './endpoints.js';
import { JOB_STATUSES } from './statuses.js';

const UnixSeconds = Type.Integer({ description: 'Unix timestamp, seconds.' });

export const JobErrorSchema = Type.Object(
  {
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(Nullable(Type.Record(Type.String(), Type.Unknown()))),
  },
  { description: 'Why the job failed.' },
);

export const JobWarningSchema = Type.Object({
  code: Type.String(),
  message: Type.String(),
  details: Type.Optional(Nullable(Type.Record(Type.String(), Type.Unknown()))),
});

export const JobResponseSchema = Type.Object(
  { status_code: Type.Integer(), body: Type.Unknown() },
  { description: 'What the endpoint answered, stored when the job completed.' },
);

export const MetadataSchema = Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }), {
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
  warnings: Nullable(Type.Array(JobWarningSchema)),
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

export const JobStatusSchema = Type.Object(lifecycleFields, {
  description: 'Lifecycle fields only: the cheap answer for polling.',
});

export const JobSchema = Type.Object(
  {
    ...lifecycleFields,
    request: Type.Unknown({ description: 'The original request body; null unless include_request=true.' }),
    response: Nullable(JobResponseSchema),
    cloud_task_name: Nullable(Type.String()),
    request_gcs_paths: Nullable(
      Type.Record(Type.String(), Type.String(), {
        description: 'JSON pointer -> storage URI of each offloaded request artifact.',
      }),
    ),
  },
  { description: 'An asynchronous job.' },
);

export type JobView = Static<typeof JobSchema>;
export type JobStatusView = Static<typeof JobStatusSchema>;
export type JobWarning = Static<typeof JobWarningSchema>;

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
