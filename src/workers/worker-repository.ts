import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database, JobRow } from '../db/types.js';
import { DETAIL_COLUMNS, type JobDetailRow, toArtifactRows } from '../jobs/job-repository.js';
import type { ArtifactRecord } from '../storage/artifact-restorer.js';
import type { AttemptOutcome } from './attempt-outcomes.js';

type Db = Kysely<Database> | Transaction<Database>;

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
 * One statement: locks the oldest runnable queued jobs of the organization (skipping rows other
 * claimers hold), starts a lease on each and records the attempt. The order and the filter
 * match the partial index jobs_claim_idx (organization_id, run_after, created_at, id).
 * The attempt number is the incremented attempt_count, read from the row version this
 * statement locked, so it is exact even when the job was requeued a moment before.
 */
export async function claimQueuedJobs(db: Db, q: ClaimQuery): Promise<ClaimedJobRow[]> {
  const endpointFilter = q.endpoints === null ? sql`` : sql`and endpoint = any(${q.endpoints}::text[])`;
  const columns = sql.join(DETAIL_COLUMNS.map((c) => sql.ref(`jobs.${c}`)));
  const { rows } = await sql<ClaimedJobRow & { run_after: Date }>`
    with picked as (
      select id from jobs
      where status = 'queued' and organization_id = ${q.organizationId} and run_after <= ${q.now}
        ${endpointFilter}
      order by run_after, created_at, id
      limit ${q.limit}
      for update skip locked
    ), claimed as (
      update jobs set
        status = 'in_progress',
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

/** The earliest run_after among queued jobs not yet runnable: when a waiting claim should look again. */
export async function findNextRunAfter(
  db: Db,
  q: Pick<ClaimQuery, 'organizationId' | 'endpoints' | 'now'>,
): Promise<Date | undefined> {
  const row = await db
    .selectFrom('jobs')
    .select((eb) => eb.fn.min('run_after').as('next'))
    .where('status', '=', 'queued')
    .where('organization_id', '=', q.organizationId)
    .where('run_after', '>', q.now)
    .$if(q.endpoints !== null, (qb) => qb.where('endpoint', 'in', q.endpoints as string[]))
    .executeTakeFirst();
  return row?.next ?? undefined;
}

/** The state a lease check needs, to tell a stale token (409) from a job that is not the caller's (404). */
export async function findLeaseState(db: Db, organizationId: string, jobId: string) {
  return db
    .selectFrom('jobs')
    .select(['status', 'lease_token', 'cancelled'])
    .where('id', '=', jobId)
    .where('organization_id', '=', organizationId)
    .executeTakeFirst();
}

export interface LeaseRef {
  organizationId: string;
  jobId: string;
  leaseToken: string;
}

/** Heartbeat. The token is the fence: an expired lease the reaper has not taken back yet may be renewed. */
export async function renewLease(db: Db, lease: LeaseRef, leaseExpiresAt: Date, now: Date) {
  return db
    .updateTable('jobs')
    .set({ lease_expires_at: leaseExpiresAt, updated_at: now })
    .where('id', '=', lease.jobId)
    .where('organization_id', '=', lease.organizationId)
    .where('status', '=', 'in_progress')
    .where('lease_token', '=', lease.leaseToken)
    .returning(['cancelled', 'lease_expires_at'])
    .executeTakeFirst();
}

export interface LeasedJob {
  id: string;
  organization_id: string;
  attempt_count: number;
  max_attempts: number;
  cancelled: boolean;
  lease_token: string;
  lease_owner: string | null;
}

const LEASED_COLUMNS = [
  'id',
  'organization_id',
  'attempt_count',
  'max_attempts',
  'cancelled',
  'lease_token',
  'lease_owner',
] as const;

/** Locks the job while the caller decides what its failure leads to; undefined when the lease is not held. */
export async function lockLeasedJob(
  trx: Transaction<Database>,
  lease: LeaseRef,
): Promise<LeasedJob | undefined> {
  const row = await trx
    .selectFrom('jobs')
    .select(LEASED_COLUMNS)
    .where('id', '=', lease.jobId)
    .where('organization_id', '=', lease.organizationId)
    .where('status', '=', 'in_progress')
    .where('lease_token', '=', lease.leaseToken)
    .forUpdate()
    .executeTakeFirst();
  return row as LeasedJob | undefined;
}

/** Locks a batch of lapsed leases; rows another reaper holds are skipped, so replicas share the work. */
export async function lockExpiredLeases(
  trx: Transaction<Database>,
  now: Date,
  limit: number,
): Promise<LeasedJob[]> {
  const rows = await trx
    .selectFrom('jobs')
    .select(LEASED_COLUMNS)
    .where('status', '=', 'in_progress')
    .where('lease_expires_at', '<', now)
    .orderBy('lease_expires_at')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute();
  return rows as LeasedJob[];
}

/** Released attempts per job: they do not use up the job's attempts. */
export async function countReleasedAttempts(
  trx: Transaction<Database>,
  jobIds: readonly string[],
): Promise<Map<string, number>> {
  if (jobIds.length === 0) return new Map();
  const rows = await trx
    .selectFrom('job_attempts')
    .select(['job_id', (eb) => eb.fn.countAll<string>().as('released')])
    .where('job_id', 'in', jobIds)
    .where('outcome', '=', 'released')
    .groupBy('job_id')
    .execute();
  return new Map(rows.map((r) => [r.job_id, Number(r.released)]));
}

export interface JobErrorValue {
  code: string;
  message: string;
  details?: Record<string, unknown> | null;
}

/** Where a job goes when its lease ends. */
export type LeaseEnd =
  | { status: 'queued'; runAfter: Date }
  | { status: 'failed'; error: JobErrorValue }
  | { status: 'cancelled' }
  | { status: 'completed'; response: unknown; warnings: readonly unknown[] | null };

/**
 * Ends the lease, conditional on it still being held: undefined when the job is no longer
 * in progress under this token. last_failure_code is kept as it was when `lastFailureCode` is
 * undefined.
 */
export async function endLease(
  db: Db,
  lease: LeaseRef,
  end: LeaseEnd,
  options: { now: Date; lastFailureCode?: string },
): Promise<JobDetailRow | undefined> {
  const { now } = options;
  const terminal = end.status !== 'queued';
  return db
    .updateTable('jobs')
    .set({
      status: end.status,
      lease_owner: null,
      lease_token: null,
      lease_expires_at: null,
      updated_at: now,
      completed_at: terminal ? now : null,
      error: end.status === 'failed' ? JSON.stringify(end.error) : null,
      ...(end.status === 'queued' ? { run_after: end.runAfter } : {}),
      ...(end.status === 'completed'
        ? {
            response: JSON.stringify(end.response),
            warnings: end.warnings === null ? null : JSON.stringify(end.warnings),
          }
        : {}),
      ...(options.lastFailureCode === undefined ? {} : { last_failure_code: options.lastFailureCode }),
    })
    .where('id', '=', lease.jobId)
    .where('organization_id', '=', lease.organizationId)
    .where('status', '=', 'in_progress')
    .where('lease_token', '=', lease.leaseToken)
    .returning(DETAIL_COLUMNS)
    .executeTakeFirst();
}

/** Records how the attempt of this lease ended; only once. */
export async function finishAttempt(
  db: Db,
  leaseToken: string,
  outcome: AttemptOutcome,
  options: { now: Date; error?: JobErrorValue },
): Promise<void> {
  await db
    .updateTable('job_attempts')
    .set({
      outcome,
      finished_at: options.now,
      error: options.error === undefined ? null : JSON.stringify(options.error),
    })
    .where('lease_token', '=', leaseToken)
    .where('outcome', 'is', null)
    .execute();
}

export async function insertResponseArtifacts(
  trx: Transaction<Database>,
  jobId: string,
  artifacts: readonly ArtifactRecord[],
): Promise<void> {
  if (artifacts.length === 0) return;
  await trx.insertInto('job_artifacts').values(toArtifactRows(jobId, artifacts)).execute();
}

export async function listJobAttempts(db: Db, jobId: string) {
  return db
    .selectFrom('job_attempts')
    .select(['attempt', 'worker_id', 'started_at', 'finished_at', 'outcome', 'error'])
    .where('job_id', '=', jobId)
    .orderBy('attempt')
    .execute();
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

/**
 * complete() without response artifacts, as one statement: ends the lease and records the
 * attempt's outcome (instead of BEGIN, two UPDATEs and COMMIT: four round trips).
 */
export async function completeLease(
  db: Db,
  lease: LeaseRef,
  end: { response: unknown; warnings: readonly unknown[] | null },
  now: Date,
): Promise<JobDetailRow | undefined> {
  const columns = sql.join(DETAIL_COLUMNS.map((c) => sql.ref(c)));
  const { rows } = await sql<JobDetailRow>`
    with ended as (
      update jobs set status = 'completed', lease_owner = null, lease_token = null, lease_expires_at = null,
        updated_at = ${now}, completed_at = ${now}, error = null,
        response = ${JSON.stringify(end.response)}::json,
        warnings = ${end.warnings === null ? null : JSON.stringify(end.warnings)}::jsonb
      where id = ${lease.jobId} and organization_id = ${lease.organizationId}
        and status = 'in_progress' and lease_token = ${lease.leaseToken}
      returning ${columns}
    ), attempt as (
      update job_attempts set outcome = 'succeeded', finished_at = ${now}, error = null
      where lease_token = ${lease.leaseToken} and outcome is null and exists (select 1 from ended)
    )
    select * from ended
  `.execute(db);
  return rows[0];
}
