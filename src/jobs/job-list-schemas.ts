import { type Static, Type } from '@sinclair/typebox';
import { JOB_ID_PATTERN } from '../domain/ids.js';
import { JobSchema } from '../domain/job-shape.js';
import { JOB_STATUSES } from '../domain/job-statuses.js';
import { Nullable, StringEnum } from '../domain/schema-types.js';
import { QueryBoolean } from '../http/schema-helpers.js';

export const LIST_MAX_LIMIT = 100;
export const LIST_DEFAULT_LIMIT = 20;
/** Each job of such a page may read its whole response back from object storage. */
export const LIST_MAX_LIMIT_WITH_RESPONSE = 20;

export const LIST_ORDERS = ['asc', 'desc'] as const;
export type ListOrder = (typeof LIST_ORDERS)[number];

const JobCursor = (description: string) =>
  Type.String({ pattern: JOB_ID_PATTERN, description, examples: ['job_V1StGXR8_Z5jdHi6B-myT'] });

const DateParam = (description: string) =>
  Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description, examples: ['2024-01-16'] });

export const ListQuerySchema = Type.Object({
  limit: Type.Integer({
    minimum: 1,
    maximum: LIST_MAX_LIMIT,
    default: LIST_DEFAULT_LIMIT,
    description: `Jobs per page, 1 to ${LIST_MAX_LIMIT}; at most ${LIST_MAX_LIMIT_WITH_RESPONSE} with include_response=true.`,
  }),
  order: StringEnum(LIST_ORDERS, {
    default: 'desc',
    description: 'By creation time: desc (newest first) or asc (oldest first).',
  }),
  after: Type.Optional(
    JobCursor('The page that follows this job in the chosen order: a previous list_metadata.after.'),
  ),
  before: Type.Optional(
    JobCursor('The page that precedes this job in the chosen order: a previous list_metadata.before.'),
  ),
  status: Type.Optional(StringEnum(JOB_STATUSES, { description: 'Only jobs in this status.' })),
  endpoint: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 256,
      description: 'Only jobs for this endpoint, with or without its /v1 prefix.',
      examples: ['/v1/documents/extract', 'documents/extract'],
    }),
  ),
  metadata: Type.Optional(
    Type.String({
      maxLength: 16384,
      description:
        'A JSON object of string values; only jobs whose metadata holds every one of these pairs exactly.',
      examples: ['{"batch_id":"batch_001"}'],
    }),
  ),
  from_date: Type.Optional(DateParam('Only jobs created on or after this day (UTC), YYYY-MM-DD.')),
  to_date: Type.Optional(DateParam('Only jobs created on or before this day (UTC), YYYY-MM-DD.')),
  include_request: Type.Optional(QueryBoolean('Restore and include the original request of each job.')),
  include_response: Type.Optional(QueryBoolean('Restore and include the response of each completed job.')),
  access_token: Type.Optional(
    Type.String({ description: 'The API key, for callers that cannot set headers.' }),
  ),
});

export type ListQuery = Static<typeof ListQuerySchema>;

export const JobListSchema = Type.Object(
  {
    object: Type.Literal('list'),
    data: Type.Array(JobSchema),
    first_id: Nullable(Type.String({ description: 'Id of the first job of data; null on an empty page.' })),
    last_id: Nullable(Type.String({ description: 'Id of the last job of data; null on an empty page.' })),
    has_more: Type.Boolean({
      description:
        'More jobs lie beyond this page in the direction of travel: after last_id for a first page or an `after` page, before first_id for a `before` page.',
    }),
    list_metadata: Type.Object({
      before: Nullable(
        Type.String({ description: 'Pass as `before` for the previous page; null when there is none.' }),
      ),
      after: Nullable(
        Type.String({ description: 'Pass as `after` for the next page; null on the last page.' }),
      ),
    }),
  },
  { description: 'One page of jobs, in the requested order.' },
);

export type JobListView = Static<typeof JobListSchema>;
