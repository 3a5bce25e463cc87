import type { Db } from '../db/types.js';
import { statusAllows } from '../lifecycle/transition-sql.js';

/** Reads of the worker protocol. Every state change is in ../lifecycle/. */

/**
 * The earliest run_after among queued jobs not yet runnable: when a waiting claim should look
 * again. Served by jobs_claim_idx (organization_id, run_after, …) where status = 'queued'.
 */
export async function findNextRunAfter(
  db: Db,
  q: { organizationId: string; endpoints: readonly string[] | null; now: Date },
): Promise<Date | undefined> {
  const row = await db
    .selectFrom('jobs')
    .select((eb) => eb.fn.min('run_after').as('next'))
    .where(statusAllows('claim'))
    .where('organization_id', '=', q.organizationId)
    .where('run_after', '>', q.now)
    .$if(q.endpoints !== null, (qb) => qb.where('endpoint', 'in', q.endpoints as string[]))
    .executeTakeFirst();
  return row?.next ?? undefined;
}

/** By primary key: what tells a stale token (409) from a job that is not the caller's (404). */
export async function findLeaseState(db: Db, organizationId: string, jobId: string) {
  return db
    .selectFrom('jobs')
    .select(['status', 'lease_token', 'cancelled'])
    .where('id', '=', jobId)
    .where('organization_id', '=', organizationId)
    .executeTakeFirst();
}

/** How the attempt of this lease ended (null while it runs; undefined when there is none). */
export async function findAttemptOutcome(db: Db, jobId: string, leaseToken: string) {
  const row = await db
    .selectFrom('job_attempts')
    .select('outcome')
    .where('job_id', '=', jobId)
    .where('lease_token', '=', leaseToken)
    .executeTakeFirst();
  return row?.outcome;
}
