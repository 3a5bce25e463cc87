import { sql } from 'kysely';
import { DETAIL_COLUMNS, type JobDetailRow } from '../db/job-columns.js';
import type { Db, JobRow } from '../db/types.js';
import { statusAfter, statusAllows } from './transition-sql.js';

export type ClaimedJobRow = JobDetailRow &
  Pick<JobRow, 'request'> & { lease_token: string; lease_expires_at: Date };

export interface ClaimQuery {
  organizationId: string;
  workerId: string;
  /** Stored (`/v1/...`) forms; null for every endpoint. */
  endpoints: readonly string[] | null;
  limit: number;
  leaseExpiresAt: Date;
  now: Date;
}

/**
 * One statement (transition `claim`): locks the oldest runnable queued jobs of the organization
 * (skipping rows other claimers hold), starts a lease on each and records the attempt. The order
 * and the filter match the partial index jobs_claim_idx (organization_id, run_after, created_at,
 * id) where status = 'queued'. The attempt number is the incremented attempt_count, read from the
 * row version this statement locked, so it is exact even when the job was requeued a moment before.
 */
export async function claimQueuedJobs(db: Db, q: ClaimQuery): Promise<ClaimedJobRow[]> {
  const endpointFilter = q.endpoints === null ? sql`` : sql`and endpoint = any(${q.endpoints}::text[])`;
  const columns = sql.join(DETAIL_COLUMNS.map((c) => sql.ref(`jobs.${c}`)));
  const { rows } = await sql<ClaimedJobRow & { run_after: Date }>`
    with picked as (
      select id from jobs
      where ${statusAllows('claim')} and organization_id = ${q.organizationId} and run_after <= ${q.now}
        ${endpointFilter}
      order by run_after, created_at, id
      limit ${q.limit}
      for update skip locked
    ), claimed as (
      update jobs set
        status = ${statusAfter('claim')},
        started_at = coalesce(jobs.started_at, ${q.now}),
        attempt_count = jobs.attempt_count + 1,
        last_attempt_at = ${q.now},
        lease_owner = ${q.workerId},
        lease_token = gen_random_uuid(),
        lease_expires_at = ${q.leaseExpiresAt},
        updated_at = ${q.now}
      from picked
      where jobs.id = picked.id
      returning ${columns}, jobs.request, jobs.lease_token, jobs.lease_expires_at, jobs.run_after
    ), attempts as (
      insert into job_attempts (job_id, attempt, worker_id, lease_token, started_at)
      select id, attempt_count, ${q.workerId}, lease_token, ${q.now} from claimed
    )
    select * from claimed order by run_after, created_at, id
  `.execute(db);
  return rows;
}
