import { sql } from 'kysely';
import { DETAIL_COLUMNS, type JobDetailRow } from '../db/job-columns.js';
import type { Db, NewJobRow } from '../db/types.js';
import type { ArtifactRecord } from '../domain/artifacts.js';
import { AppError } from '../domain/errors.js';
import type { JobStatus } from '../domain/job-statuses.js';
import { toArtifactRows } from './artifact-rows.js';
import { statusAfter, statusAllows } from './transition-sql.js';

/**
 * Inserts a queued job and its artifacts (transition `create`); the caller owns the transaction.
 * With an idempotency key that another job of the organization already holds, nothing is
 * inserted (jobs_idempotency_idx) and the answer is undefined: the caller then reads the job that won.
 *
 * The artifact rows take over the objects' intents (storage/offloaded-write.ts) in the same
 * statement. When one is missing, the sweeper has given up on it (its deadline passed) and may be
 * deleting its object: the create must not happen, and this throws a 503 so that the caller's
 * transaction rolls back.
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
    const claimed = await insertArtifactsClaimingIntents(trx, job.id, artifacts);
    if (claimed < artifacts.length) {
      throw new AppError(
        'service_unavailable',
        'Storing the request took too long; the job was not created. Try again.',
      );
    }
  }
  return inserted;
}

/**
 * One statement: deletes the intents of the artifacts' objects (by storage_intents_pkey) and,
 * only when every one was there, inserts the artifact rows. Answers how many rows it inserted.
 */
async function insertArtifactsClaimingIntents(
  trx: Db,
  jobId: string,
  artifacts: readonly ArtifactRecord[],
): Promise<number> {
  const result = await sql`
    with claimed as (
      delete from storage_intents where storage_uri = any(${artifacts.map((a) => a.storageUri)}::text[])
      returning storage_uri
    )
    insert into job_artifacts (job_id, role, pointer, kind, storage_uri, byte_size, sha256, content_type)
    select a.job_id, a.role, a.pointer, a.kind, a.storage_uri, a.byte_size, a.sha256, a.content_type
    from jsonb_to_recordset(${JSON.stringify(toArtifactRows(jobId, artifacts))}::jsonb) as a(job_id text,
      role text, pointer text, kind text, storage_uri text, byte_size bigint, sha256 text, content_type text)
    where (select count(*) from claimed) = ${artifacts.length}`.execute(trx);
  return Number(result.numAffectedRows ?? 0);
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
