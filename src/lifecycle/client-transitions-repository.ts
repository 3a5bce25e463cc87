import { sql } from 'kysely';
import { DETAIL_COLUMNS, type JobDetailRow } from '../db/job-columns.js';
import type { Db, NewJobRow } from '../db/types.js';
import type { ArtifactRecord } from '../domain/artifacts.js';
import type { JobStatus } from '../domain/job-statuses.js';
import { toArtifactRows } from './artifact-rows.js';
import { statusAfter, statusAllows } from './transition-sql.js';

/**
 * Inserts a queued job and its artifacts (transition `create`); the caller owns the transaction.
 * With an idempotency key that another job of the organization already holds, nothing is
 * inserted (jobs_idempotency_idx) and the answer is undefined: the caller then reads the job that won.
 */
export async function insertJobWithArtifacts(
  trx: Db,
  job: NewJobRow & { status: 'queued' },
  artifacts: readonly ArtifactRecord[],
): Promise<JobDetailRow | undefined> {
  const inserted = await trx
    .insertInto('jobs')
    .values(job)
    .onConflict((oc) =>
      oc.columns(['organization_id', 'idempotency_key']).where('idempotency_key', 'is not', null).doNothing(),
    )
    .returning(DETAIL_COLUMNS)
    .executeTakeFirst();
  if (inserted && artifacts.length > 0) {
    await trx.insertInto('job_artifacts').values(toArtifactRows(job.id, artifacts)).execute();
  }
  return inserted;
}

/**
 * One statement by primary key: a validating or queued job becomes cancelled at once (transition
 * `cancel`); a running job is flagged so its worker stops at its next heartbeat
 * (`requestCancellation`). Undefined when the job is not cancellable (already terminal, already
 * flagged) or not the organization's: the caller tells those apart.
 */
export async function cancelJob(db: Db, organizationId: string, jobId: string, now: Date) {
  return db
    .updateTable('jobs')
    .set({
      status: sql<JobStatus>`case when ${statusAllows('cancel')} then ${statusAfter('cancel')} else status end`,
      completed_at: sql<Date | null>`case when ${statusAllows('cancel')} then ${now}::timestamptz else completed_at end`,
      cancelled: true,
      updated_at: now,
    })
    .where('id', '=', jobId)
    .where('organization_id', '=', organizationId)
    .where(statusAllows('cancel', 'requestCancellation'))
    .where('cancelled', '=', false)
    .returning(DETAIL_COLUMNS)
    .executeTakeFirst();
}

/**
 * One statement by primary key (transition `retry`): a failed or cancelled job goes back to the
 * queue under the same id, runnable now. attempt_count and last_failure_code stay, as the record
 * of what happened before.
 */
export async function retryJob(db: Db, organizationId: string, jobId: string, now: Date) {
  return db
    .updateTable('jobs')
    .set({
      status: statusAfter('retry'),
      cancelled: false,
      error: null,
      completed_at: null,
      run_after: now,
      updated_at: now,
      lease_owner: null,
      lease_token: null,
      lease_expires_at: null,
    })
    .where('id', '=', jobId)
    .where('organization_id', '=', organizationId)
    .where(statusAllows('retry'))
    .returning(DETAIL_COLUMNS)
    .executeTakeFirst();
}
