import { sql, type Transaction } from 'kysely';
import { DETAIL_COLUMNS, type JobDetailRow } from '../db/job-columns.js';
import type { Database, Db, JobRow } from '../db/types.js';
import type { AttemptOutcome } from '../domain/attempt-outcomes.js';
import type { Problem } from '../domain/job-shape.js';
import { LEASE_END_TRANSITIONS } from '../domain/job-transitions.js';
import type { LeaseEnd, LeaseRef } from '../domain/lease.js';
import { keyedJobStatusAllows, keyedOrganization, statusAfter, statusAllows } from './transition-sql.js';

/** A job locked under a lease, with what deciding the end of its attempt needs. */
export type LeasedJob = Pick<
  JobRow,
  'id' | 'organization_id' | 'attempt_count' | 'max_attempts' | 'cancelled' | 'lease_owner'
> & { lease_token: string };

const LEASED_COLUMNS = [
  'id',
  'organization_id',
  'attempt_count',
  'max_attempts',
  'cancelled',
  'lease_token',
  'lease_owner',
] as const;

/** `unnest` of the leases a batch names, for a join on the primary key (jobs_pkey). */
const leaseRows = (leases: readonly LeaseRef[]) => sql`unnest(
    ${leases.map((l) => l.jobId)}::text[],
    ${leases.map((l) => l.organizationId)}::text[],
    ${leases.map((l) => l.leaseToken)}::uuid[]
  ) as l(job_id, organization_id, lease_token)`;

/**
 * Heartbeats, one statement for the batch. The token is the fence: an expired lease the reaper has
 * not taken back yet may be renewed, since no other worker can hold the job. Answers the leases
 * still held; the others matched no row.
 */
export async function renewLeases(
  db: Db,
  renewals: readonly { lease: LeaseRef; leaseSeconds: number }[],
  now: Date,
): Promise<{ id: string; cancelled: boolean; lease_expires_at: Date }[]> {
  if (renewals.length === 0) return [];
  const { rows } = await sql<{ id: string; cancelled: boolean; lease_expires_at: Date }>`
    update jobs set lease_expires_at = ${now}::timestamptz + make_interval(secs => r.lease_seconds),
      updated_at = ${now}
    from unnest(
      ${renewals.map((r) => r.lease.jobId)}::text[],
      ${renewals.map((r) => r.lease.organizationId)}::text[],
      ${renewals.map((r) => r.lease.leaseToken)}::uuid[],
      ${renewals.map((r) => r.leaseSeconds)}::int[]
    ) as r(job_id, organization_id, lease_token, lease_seconds)
    where jobs.id = r.job_id and ${keyedOrganization(sql.raw('r.organization_id'))}
      and ${keyedJobStatusAllows('requeue')} and jobs.lease_token = r.lease_token
    returning jobs.id, jobs.cancelled, jobs.lease_expires_at`.execute(db);
  return rows;
}

/**
 * Locks the leased jobs while the caller decides how their attempts end, in primary-key order so
 * that two batches never wait on each other in a cycle. A lease not held is not in the answer.
 */
export async function lockLeasedJobs(
  trx: Transaction<Database>,
  leases: readonly LeaseRef[],
): Promise<LeasedJob[]> {
  if (leases.length === 0) return [];
  const columns = sql.join(LEASED_COLUMNS.map((c) => sql.ref(`jobs.${c}`)));
  const { rows } = await sql<LeasedJob>`
    select ${columns} from jobs join ${leaseRows(leases)}
      on jobs.id = l.job_id and jobs.lease_token = l.lease_token
        and ${keyedOrganization(sql.raw('l.organization_id'))}
    where ${keyedJobStatusAllows('requeue')}
    order by jobs.id
    for update of jobs`.execute(trx);
  return rows;
}

/**
 * Locks a batch of lapsed leases in the order of jobs_lease_idx (lease_expires_at) where
 * status = 'in_progress'; rows another reaper holds are skipped, so replicas share the work.
 */
export async function lockExpiredLeases(
  trx: Transaction<Database>,
  now: Date,
  limit: number,
): Promise<LeasedJob[]> {
  return trx
    .selectFrom('jobs')
    .select(LEASED_COLUMNS)
    .where(statusAllows('requeue'))
    .where('lease_expires_at', '<', now)
    .orderBy('lease_expires_at')
    .limit(limit)
    .$narrowType<{ lease_token: string }>()
    .forUpdate()
    .skipLocked()
    .execute();
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

/** How one locked lease ends without a result, and what its attempt row records. */
export interface LeaseEnding {
  job: LeasedJob;
  end: LeaseEnd;
  outcome: AttemptOutcome;
  /** Recorded on the attempt (and on the job when it fails). */
  error?: Problem;
  /** Undefined keeps the job's last_failure_code as it was. */
  lastFailureCode?: string;
}

/**
 * Ends leases without a result (transitions `requeue`, `fail`, `endCancelled`) and records their
 * attempts: one statement for the jobs and one for the attempts, whatever the batch size. Each
 * lease must be locked (lockLeasedJobs, lockExpiredLeases) in the caller's transaction; the
 * statement is still conditional on the lease being held.
 */
export async function endLeases(
  trx: Transaction<Database>,
  endings: readonly LeaseEnding[],
  now: Date,
): Promise<JobDetailRow[]> {
  if (endings.length === 0) return [];
  const statuses = [...new Set(endings.map((e) => LEASE_END_TRANSITIONS[e.end.status]))];
  const ends = endings.map(({ job, end, lastFailureCode }) => ({
    job_id: job.id,
    organization_id: job.organization_id,
    lease_token: job.lease_token,
    status: end.status,
    run_after: end.status === 'queued' ? end.runAfter.toISOString() : null,
    error: end.status === 'failed' ? end.error : null,
    last_failure_code: lastFailureCode ?? null,
  }));
  const columns = sql.join(DETAIL_COLUMNS.map((c) => sql.ref(`jobs.${c}`)));
  const { rows } = await sql<JobDetailRow>`
    update jobs set status = e.status, lease_owner = null, lease_token = null, lease_expires_at = null,
      updated_at = ${now}, completed_at = case when e.status = ${statusAfter('requeue')} then null else ${now}::timestamptz end,
      error = e.error, run_after = coalesce(e.run_after, jobs.run_after),
      last_failure_code = coalesce(e.last_failure_code, jobs.last_failure_code)
    from jsonb_to_recordset(${JSON.stringify(ends)}::jsonb) as e(job_id text, organization_id text,
      lease_token uuid, status text, run_after timestamptz, error jsonb, last_failure_code text)
    where jobs.id = e.job_id and ${keyedOrganization(sql.raw('e.organization_id'))}
      and ${keyedJobStatusAllows(...statuses)} and jobs.lease_token = e.lease_token
    returning ${columns}`.execute(trx);
  const attempts = endings.map(({ job, outcome, error }) => ({
    lease_token: job.lease_token,
    outcome,
    error: error ?? null,
  }));
  await sql`
    update job_attempts set outcome = a.outcome, finished_at = ${now}, error = a.error
    from jsonb_to_recordset(${JSON.stringify(attempts)}::jsonb) as a(lease_token uuid, outcome text, error jsonb)
    where job_attempts.lease_token = a.lease_token and job_attempts.outcome is null`.execute(trx);
  return rows;
}
