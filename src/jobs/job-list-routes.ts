import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { normaliseEndpoint } from '../domain/endpoints.js';
import { AppError } from '../domain/errors.js';
import type { JobView } from '../domain/job-shape.js';
import { ownOrganization } from '../http/caller.js';
import { errorResponses, isTrue } from '../http/schema-helpers.js';
import { findUnstorableJson } from '../http/storable-json.js';
import { mapWithConcurrency } from '../lib/concurrency.js';
import type { JobContext } from './job-context.js';
import { findJobPage, type JobListFilter, type JobListPage } from './job-list-repository.js';
import {
  JobListSchema,
  type JobListView,
  LIST_MAX_LIMIT_WITH_RESPONSE,
  type ListQuery,
  ListQuerySchema,
} from './job-list-schemas.js';
import { presentJob, restoreDeadline } from './job-reader.js';
import { jobBelongsTo } from './job-repository.js';

// Jobs restored at once; each restore also reads its own artifacts with RESTORE_CONCURRENCY,
// so this bounds a page's storage reads to their product.
const RESTORE_JOBS_AT_ONCE = 4;
const DAY_MS = 86_400_000;

const invalidQuery = (field: string, reason: string) =>
  new AppError('invalid_request', `Invalid query parameter '${field}': ${reason}.`, {
    location: 'querystring',
    field,
  });

function parseMetadata(raw: string): Record<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw invalidQuery('metadata', 'must be a JSON object of string values, and is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidQuery('metadata', 'must be a JSON object of string values');
  }
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      throw invalidQuery('metadata', `the value of '${key}' must be a string`);
    }
  }
  // Metadata is stored as jsonb: a filter it could never hold is refused rather than sent.
  const problem = findUnstorableJson(value, 2);
  if (problem)
    throw invalidQuery(
      'metadata',
      problem.field ? `in '${problem.field}', ${problem.reason}` : problem.reason,
    );
  return value as Record<string, string>;
}

/** Midnight UTC of a YYYY-MM-DD day that exists in the calendar. */
function parseDay(field: string, day: string): Date {
  const date = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== day) {
    throw invalidQuery(field, `'${day}' is not a calendar date (YYYY-MM-DD)`);
  }
  return date;
}

function toFilter(organizationId: string, query: ListQuery, endpoints: ReadonlySet<string>): JobListFilter {
  const filter: JobListFilter = { organizationId, status: query.status };
  if (query.endpoint !== undefined) {
    filter.endpoint = normaliseEndpoint(query.endpoint, endpoints);
    if (filter.endpoint === undefined) {
      throw invalidQuery('endpoint', `must be one of: ${[...endpoints].join(', ')}`);
    }
  }
  if (query.metadata !== undefined) {
    const metadata = parseMetadata(query.metadata);
    // An empty object asks for no pair, so it filters nothing (null metadata included).
    if (Object.keys(metadata).length > 0) filter.metadata = metadata;
  }
  if (query.from_date !== undefined) filter.createdFrom = parseDay('from_date', query.from_date);
  if (query.to_date !== undefined) {
    filter.createdUntil = new Date(parseDay('to_date', query.to_date).getTime() + DAY_MS);
  }
  if (filter.createdFrom && filter.createdUntil && filter.createdFrom >= filter.createdUntil) {
    throw invalidQuery('from_date', `must not be later than to_date (${query.to_date})`);
  }
  return filter;
}

function envelope(data: JobView[], hasMore: boolean, side: 'after' | 'before' | undefined): JobListView {
  const firstId = data.at(0)?.id ?? null;
  const lastId = data.at(-1)?.id ?? null;
  // Coming from a cursor means a page lies on that side of this one: the cursor job at least.
  return {
    object: 'list',
    data,
    first_id: firstId,
    last_id: lastId,
    has_more: hasMore,
    list_metadata: {
      before: side === 'before' ? (hasMore ? firstId : null) : side === 'after' ? firstId : null,
      after: side === 'before' ? lastId : hasMore ? lastId : null,
    },
  };
}

/** GET /v1/jobs. */
export const jobListRoutes: FastifyPluginAsyncTypebox<{ ctx: JobContext }> = async (app, { ctx }) => {
  app.get(
    '/jobs',
    {
      schema: {
        summary: 'List jobs',
        description: [
          "One page of the organization's jobs, ordered by creation time then id (order=desc, newest first, by default).",
          'Pagination is by cursor and stable while jobs are created: a page never repeats nor skips a job that existed when the walk began.',
          '`after=<id>` answers the page that follows that job in the chosen order; `before=<id>` the page that precedes it, still in the chosen order; not both.',
          "A cursor must be the id of one of the organization's jobs, otherwise 400.",
          '`has_more` says whether more jobs lie beyond this page in the direction of travel (past last_id without a cursor or with `after`, before first_id with `before`).',
          '`list_metadata.after` is the cursor for the next page in the same order (last_id), null on the last page; `list_metadata.before` is the cursor for the previous page (first_id), null on the first page.',
          'first_id and last_id are null on an empty page, and so are both cursors.',
          'Jobs are lightweight (request and response null, no storage access) unless include_request / include_response restore them, with the same warnings as a retrieve; include_response allows at most 20 jobs per page.',
        ].join(' '),
        tags: ['jobs'],
        querystring: ListQuerySchema,
        response: { 200: JobListSchema, ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { query } = request;
      const organizationId = ownOrganization(request);
      const include = { request: isTrue(query.include_request), response: isTrue(query.include_response) };
      if (include.response && query.limit > LIST_MAX_LIMIT_WITH_RESPONSE) {
        throw invalidQuery(
          'limit',
          `must be at most ${LIST_MAX_LIMIT_WITH_RESPONSE} with include_response=true`,
        );
      }
      if (query.after !== undefined && query.before !== undefined) {
        throw invalidQuery('before', "cannot be combined with 'after'; pass one cursor");
      }
      const filter = toFilter(organizationId, query, ctx.endpoints);

      const page: JobListPage = { order: query.order, limit: query.limit, include };
      if (query.after !== undefined) page.cursor = { id: query.after, side: 'after' };
      if (query.before !== undefined) page.cursor = { id: query.before, side: 'before' };
      // Another organization's job is answered exactly like an id that does not exist.
      if (page.cursor && !(await jobBelongsTo(ctx.db, organizationId, page.cursor.id))) {
        throw invalidQuery(page.cursor.side, `'${page.cursor.id}' is not the id of one of your jobs`);
      }

      const { rows, hasMore } = await findJobPage(ctx.db, filter, page);
      // One deadline for the page: a hung store delays it by RESTORE_TIMEOUT_MS, not per job.
      const deadline = restoreDeadline(ctx);
      const data = await mapWithConcurrency(rows, RESTORE_JOBS_AT_ONCE, (row) =>
        presentJob(ctx, row, include, { deadline, log: request.log }),
      );
      return envelope(data, hasMore, page.cursor?.side);
    },
  );
};
