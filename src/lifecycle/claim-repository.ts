import { sql } from 'kysely';
import { DETAIL_COLUMNS, type JobDetailRow } from '../db/job-columns.js';
import type { Db, JobRow } from '../db/types.js';
import { jobAliasStatusAllows, statusAfter, statusAllows } from './transition-sql.js';

export type ClaimedJobRow = JobDetailRow &
  Pick<JobRow, 'request'> & { lease_token: string; lease_expires_at: Date };

export interface ClaimQuery {
  /** The organizations whose jobs may be claimed; null: every organization (a fleet key). */
  organizationIds: readonly string[] | null;
  /**
   * The organizations with a max_in_flight whose claim lock this transaction holds
   * (lockLimitedOrganizations). Jobs of any other limited organization are not claimed.
   */
  lockedOrganizationIds: readonly string[];
  workerId: string;
  /** Stored (`/v1/...`) forms; null for every endpoint. */
  endpoints: readonly string[] | null;
  limit: number;
  leaseExpiresAt: Date;
  now: Date;
}

/** Advisory lock class of a limited organization's claims (the key is hashtext of its id). */
const CLAIM_LOCK_CLASS = 74_021;

/**
 * Takes, without waiting, the claim lock of every limited organization (max_in_flight set) a claim
 * may serve, for the caller's transaction: two claims never count an organization's jobs in
 * progress at the same time, so together they never exceed its limit. An organization another
 * claim holds is skipped, like a locked row. Answers the organizations locked.
 */
export async function lockLimitedOrganizations(db: Db, organizationIds: readonly string[] | null) {
  const filter = organizationIds === null ? sql`` : sql`and id = any(${organizationIds}::text[])`;
  const { rows } = await sql<{ id: string }>`
    select id from organizations
    where max_in_flight is not null ${filter}
      and pg_try_advisory_xact_lock(${CLAIM_LOCK_CLASS}, hashtext(id))`.execute(db);
  return rows.map((r) => r.id);
}

/** The organizations that have a max_in_flight. */
export async function findLimitedOrganizations(db: Db): Promise<string[]> {
  const rows = await db
    .selectFrom('organizations')
    .select('id')
    .where('max_in_flight', 'is not', null)
    .execute();
  return rows.map((r) => r.id);
}

/**
 * One statement (transition `claim`): locks runnable queued jobs (skipping rows other claimers
 * hold), starts a lease on each and records the attempt.
 *
 * Across organizations it is fair: the organizations with queued jobs (found one index probe
 * each, a loose scan of jobs_claim_idx (organization_id, run_after, created_at, id) where
 * status = 'queued'; or the ones asked for) are served in turn — each one's oldest runnable job,
 * then each one's second, … — starting where the previous claim stopped (claim_rotation advances
 * by the claim's limit), so that successive claims serve all of them in turn when more have jobs
 * than one claim takes. Each
 * organization contributes at most about twice its share of the claim (and never beyond its
 * max_in_flight), so a claim locks at most about 2 × limit rows whatever the number of
 * organizations. Inside an organization the order is that of jobs_claim_idx.
 *
 * The attempt number is the incremented attempt_count, read from the row version this statement
 * locked, so it is exact even when the job was requeued a moment before.
 */
export async function claimQueuedJobs(db: Db, q: ClaimQuery): Promise<ClaimedJobRow[]> {
  const endpointFilter = q.endpoints === null ? sql`` : sql`and j.endpoint = any(${q.endpoints}::text[])`;
  const columns = sql.join(DETAIL_COLUMNS.map((c) => sql.ref(`jobs.${c}`)));
  const heads =
    q.organizationIds === null
      ? sql`heads (organization_id) as (
          (select organization_id from jobs where ${statusAllows('claim')} order by organization_id limit 1)
          union all
          select (select j.organization_id from jobs j
                  where ${jobAliasStatusAllows('claim')} and j.organization_id > h.organization_id
                  order by j.organization_id limit 1)
          from heads h where h.organization_id is not null
        )`
      : sql`heads (organization_id) as (select unnest(${q.organizationIds}::text[]))`;
  const { rows } = await sql<ClaimedJobRow & { run_after: Date }>`
    with recursive ${heads}, orgs as (
      select o.id as organization_id,
        case when o.max_in_flight is null then null else o.max_in_flight - (
          select count(*) from jobs r where r.organization_id = o.id and r.status = 'in_progress'
        ) end as room,
        row_number() over (order by o.id) as position,
        count(*) over () as total
      from heads h join organizations o on o.id = h.organization_id
      where o.max_in_flight is null or o.id = any(${q.lockedOrganizationIds}::text[])
    ), rotation as (
      select case when (select count(*) from orgs) > 1 then nextval('claim_rotation') * ${q.limit} else 0 end as start
    ), picked as (
      select c.id, row_number() over (partition by o.organization_id order by c.run_after, c.created_at, c.id) as rank,
        (o.position + rotation.start) % o.total as turn
      from orgs o cross join rotation cross join lateral (
        select j.id, j.run_after, j.created_at from jobs j
        where ${jobAliasStatusAllows('claim')} and j.organization_id = o.organization_id
          and j.run_after <= ${q.now} ${endpointFilter}
        order by j.run_after, j.created_at, j.id
        limit least(coalesce(o.room, ${q.limit}), 2 * ceil(${q.limit}::numeric / o.total) + 1)
        for update of j skip locked
      ) c
      where coalesce(o.room, 1) > 0
      order by rank, turn
      limit ${q.limit}
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
