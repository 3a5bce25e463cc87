import { sql, type Transaction } from 'kysely';
import { DETAIL_COLUMNS, type JobDetailRow } from '../db/job-columns.js';
import type { Database, Db, JobRow } from '../db/types.js';
import type { ArtifactRecord } from '../domain/artifacts.js';
import type { AttemptOutcome } from '../domain/attempt-outcomes.js';
import { AppError } from '../domain/errors.js';
import type { Problem } from '../domain/job-shape.js';
import { LEASE_END_TRANSITIONS } from '../domain/job-transitions.js';
import type { LeaseEnd, LeaseRef } from '../domain/lease.js';
import { toArtifactRows } from './artifact-rows.js';
import { statusAfter, statusAllows } from './transition-sql.js';

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

/**
 * Heartbeat. The token is the fence: an expired lease the reaper has not taken back yet may be
 * renewed, since no other worker can hold the job.
 */
export async function renewLease(db: Db, lease: LeaseRef, leaseExpiresAt: Date, now: Date) {
  return db
    .updateTable('jobs')
    .set({ lease_expires_at: leaseExpiresAt, updated_at: now })
    .where('id', '=', lease.jobId)
    .where('organization_id', '=', lease.organizationId)
    .where(statusAllows('requeue'))
    .where('lease_token', '=', lease.leaseToken)
    .returning(['cancelled', 'lease_expires_at'])
    .$narrowType<{ lease_expires_at: Date }>()
    .executeTakeFirst();
}

/** Locks the job while the caller decides how its attempt ends; undefined when the lease is not held. */
export async function lockLeasedJob(
  trx: Transaction<Database>,
  lease: LeaseRef,
): Promise<LeasedJob | undefined> {
  return trx
    .selectFrom('jobs')
    .select(LEASED_COLUMNS)
    .where('id', '=', lease.jobId)
    .where('organization_id', '=', lease.organizationId)
    .where(statusAllows('requeue'))
    .where('lease_token', '=', lease.leaseToken)
    .$narrowType<{ lease_token: string }>()
    .forUpdate()
    .executeTakeFirst();
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

/**
 * Ends a lease without a result (transitions `requeue`, `fail`, `endCancelled`), conditional on
 * the lease still being held: undefined when the job is no longer in progress under this token.
 * last_failure_code is kept as it was when `lastFailureCode` is undefined.
 */
export async function endLease(
  db: Db,
  lease: LeaseRef,
  end: LeaseEnd,
  options: { now: Date; lastFailureCode?: string },
): Promise<JobDetailRow | undefined> {
  const { now } = options;
  return db
    .updateTable('jobs')
    .set({
      status: statusAfter(LEASE_END_TRANSITIONS[end.status]),
      lease_owner: null,
      lease_token: null,
      lease_expires_at: null,
      updated_at: now,
      completed_at: end.status === 'queued' ? null : now,
      error: end.status === 'failed' ? JSON.stringify(end.error) : null,
      ...(end.status === 'queued' ? { run_after: end.runAfter } : {}),
      ...(options.lastFailureCode === undefined ? {} : { last_failure_code: options.lastFailureCode }),
    })
    .where('id', '=', lease.jobId)
    .where('organization_id', '=', lease.organizationId)
    .where(statusAllows(LEASE_END_TRANSITIONS[end.status]))
    .where('lease_token', '=', lease.leaseToken)
    .returning(DETAIL_COLUMNS)
    .executeTakeFirst();
}

/**
 * One statement (transition `complete`), whatever the response: ends the lease, records the
 * attempt as succeeded and inserts the response's artifact rows, all conditional on the lease
 * still being held. Undefined when it is not; then nothing was written.
 *
 * With artifacts, the statement also takes over their objects' intents (storage/offloaded-write.ts):
 * it locks them first (storage_intents_pkey), completes only when every one is there, and then
 * deletes them. When one is missing, the sweeper has given up on it (its deadline passed) and may
 * be deleting its object: nothing is written, and this throws a 503. When the lease is not held,
 * the intents stay, for the caller to settle with the objects.
 */
export async function completeLease(
  db: Db,
  lease: LeaseRef,
  result: { response: unknown; warnings: readonly Problem[] | null; artifacts: readonly ArtifactRecord[] },
  now: Date,
): Promise<JobDetailRow | undefined> {
  const columns = sql.join(DETAIL_COLUMNS.map((c) => sql.ref(c)));
  const artifacts = JSON.stringify(toArtifactRows(lease.jobId, result.artifacts));
  const uris = result.artifacts.map((a) => a.storageUri);
  // The intents of the artifacts' objects: locked before the update, which needs all of them,
  // and deleted with it. The answer then always has one row, so that a missing intent shows.
  const claim =
    uris.length === 0
      ? undefined
      : {
          lock: sql`intents as materialized (
      select storage_uri from storage_intents where storage_uri = any(${uris}::text[]) for update
    ),`,
          allThere: sql`and (select count(*) from intents) = ${uris.length}`,
          take: sql`, claimed as (
      delete from storage_intents
      where storage_uri in (select storage_uri from intents) and exists (select 1 from ended)
    )`,
          answer: sql`select ended.*, (select count(*) from intents) as claimable
    from (values (1)) as one (x) left join ended on true`,
        };
  const { rows } = await sql<JobDetailRow & { claimable?: string }>`
    with ${claim?.lock ?? sql``} ended as (
      update jobs set status = ${statusAfter('complete')}, lease_owner = null, lease_token = null,
        lease_expires_at = null, updated_at = ${now}, completed_at = ${now}, error = null,
        response = ${JSON.stringify(result.response)}::json,
        warnings = ${result.warnings === null ? null : JSON.stringify(result.warnings)}::jsonb
      where id = ${lease.jobId} and organization_id = ${lease.organizationId}
        and ${statusAllows('complete')} and lease_token = ${lease.leaseToken}
        ${claim?.allThere ?? sql``}
      returning ${columns}
    ), attempt as (
      update job_attempts set outcome = 'succeeded', finished_at = ${now}, error = null
      where lease_token = ${lease.leaseToken} and outcome is null and exists (select 1 from ended)
    ), artifacts as (
      insert into job_artifacts (job_id, role, pointer, kind, storage_uri, byte_size, sha256, content_type)
      select a.job_id, a.role, a.pointer, a.kind, a.storage_uri, a.byte_size, a.sha256, a.content_type
      from jsonb_to_recordset(${artifacts}::jsonb) as a(job_id text, role text, pointer text, kind text,
        storage_uri text, byte_size bigint, sha256 text, content_type text)
      where exists (select 1 from ended)
    )${claim?.take ?? sql``}
    ${claim?.answer ?? sql`select * from ended`}
  `.execute(db);
  const [row] = rows;
  if (!claim) return row;
  const { claimable, ...job } = row;
  if (job.id !== null) return job;
  if (Number(claimable) < uris.length) {
    throw new AppError(
      'service_unavailable',
      'Storing the response took too long; the lease is unchanged, try again.',
      { job_id: lease.jobId },
    );
  }
  return undefined;
}

/** Records how the attempt of this lease ended; only once. */
export async function finishAttempt(
  db: Db,
  leaseToken: string,
  outcome: AttemptOutcome,
  options: { now: Date; error?: Problem },
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
