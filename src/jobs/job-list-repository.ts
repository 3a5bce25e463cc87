import { sql } from 'kysely';
import { DETAIL_COLUMNS, type JobDetailRow } from '../db/job-columns.js';
import type { Db } from '../db/types.js';
import type { JobStatus } from '../domain/job-statuses.js';
import type { ListOrder } from './job-list-schemas.js';

export interface JobListFilter {
  organizationId: string;
  status?: JobStatus;
  /** Stored form, `/v1/...`. */
  endpoint?: string;
  /** Every pair must be present in the job's metadata. */
  metadata?: Record<string, string>;
  /** Inclusive. */
  createdFrom?: Date;
  /** Exclusive. */
  createdUntil?: Date;
}

export interface JobListPage {
  order: ListOrder;
  limit: number;
  /** A job of the organization (checked with jobBelongsTo); the page starts next to it. */
  cursor?: { id: string; side: 'after' | 'before' };
  include: { request: boolean; response: boolean };
}

const reverse = (order: ListOrder): ListOrder => (order === 'asc' ? 'desc' : 'asc');

/**
 * The keyset query of one page, limit + 1 rows in the direction of travel: a `before` page is
 * read walking away from its cursor, so it comes back in the reverse of the page's order.
 */
export function jobListQuery(db: Db, filter: JobListFilter, page: JobListPage) {
  const travel = page.cursor?.side === 'before' ? reverse(page.order) : page.order;
  const { cursor } = page;
  return (
    db
      .selectFrom('jobs')
      .select(DETAIL_COLUMNS)
      .$if(page.include.request, (q) => q.select('request'))
      .$if(page.include.response, (q) => q.select('response'))
      .where('organization_id', '=', filter.organizationId)
      .$if(filter.status !== undefined, (q) => q.where('status', '=', filter.status as JobStatus))
      .$if(filter.endpoint !== undefined, (q) => q.where('endpoint', '=', filter.endpoint as string))
      .$if(filter.metadata !== undefined, (q) =>
        q.where(sql<boolean>`metadata @> ${JSON.stringify(filter.metadata)}::jsonb`),
      )
      .$if(filter.createdFrom !== undefined, (q) => q.where('created_at', '>=', filter.createdFrom as Date))
      .$if(filter.createdUntil !== undefined, (q) => q.where('created_at', '<', filter.createdUntil as Date))
      // The cursor's position is read inside the statement: timestamptz keeps microseconds, which
      // a round trip through a JS Date would cut, and then a page could repeat or skip jobs.
      .$if(cursor !== undefined, (q) =>
        q.where(({ eb, refTuple, selectFrom }) =>
          eb(
            refTuple('created_at', 'id'),
            travel === 'desc' ? '<' : '>',
            selectFrom('jobs as c')
              .select(['c.created_at', 'c.id'])
              .where('c.id', '=', (cursor as { id: string }).id)
              .where('c.organization_id', '=', filter.organizationId)
              .$asTuple('created_at', 'id'),
          ),
        ),
      )
      .orderBy('created_at', travel)
      .orderBy('id', travel)
      .limit(page.limit + 1)
  );
}

/** One page in the page's order, and whether more jobs lie beyond it in the direction of travel. */
export async function findJobPage(
  db: Db,
  filter: JobListFilter,
  page: JobListPage,
): Promise<{ rows: JobDetailRow[]; hasMore: boolean }> {
  const fetched: JobDetailRow[] = await jobListQuery(db, filter, page).execute();
  const hasMore = fetched.length > page.limit;
  const rows = fetched.slice(0, page.limit);
  if (page.cursor?.side === 'before') rows.reverse();
  return { rows, hasMore };
}
