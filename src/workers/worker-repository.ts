import { sql } from 'kysely';
import type { Db } from '../db/types.js';
import { statusAllows } from '../lifecycle/transition-sql.js';

/** Reads of the worker protocol. Every state change is in ../lifecycle/. */

/**
 * The earliest run_after among queued jobs not yet runnable: when a waiting claim should look
 * again. Served by jobs_claim_idx (organization_id, run_after, …) where status = 'queued'.
 */
export async function findNextRunAfter(
  db: Db,
  q: { organizationIds: readonly string[] | null; endpoints: readonly string[] | null; now: Date },
): Promise<Date | undefined> {
  const row = await db
    .selectFrom('jobs')
    .select((eb) => eb.fn.min('run_after').as('next'))
    .where(statusAllows('claim'))
    .$if(q.organizationIds !== null, (qb) => qb.where('organization_id', 'in', q.organizationIds as string[]))
    .where('run_after', '>', q.now)
    .$if(q.endpoints !== null, (qb) => qb.where('endpoint', 'in', q.endpoints as string[]))
    .executeTakeFirst();
  return row?.next ?? undefined;
}

/** By primary key, for the reports of a batch that matched no lease: where each job is now. */
export async function findLeaseStates(db: Db, jobIds: readonly string[]) {
  if (jobIds.length === 0) return [];
  return db
    .selectFrom('jobs')
    .select(['id', 'organization_id', 'status'])
    .where('id', '=', sql<string>`any(${[...jobIds]}::text[])`)
    .execute();
}

/** How the attempts of these leases ended (job_attempts_lease_token_key): to recognise a resent report. */
export async function findAttemptOutcomes(db: Db, leaseTokens: readonly string[]) {
  if (leaseTokens.length === 0) return [];
  return db
    .selectFrom('job_attempts')
    .select(['job_id', 'lease_token', 'outcome'])
    .where('lease_token', '=', sql<string>`any(${[...leaseTokens]}::uuid[])`)
    .execute();
}
