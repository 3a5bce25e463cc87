import { CompiledQuery, type Kysely, sql, type Transaction } from 'kysely';
import type { Database, JobRow, NewJobArtifactRow, NewJobRow } from '../db/types.js';
import type { ArtifactRecord } from '../storage/artifact-restorer.js';
import type { ArtifactRole } from '../storage/artifact-types.js';

type Db = Kysely<Database> | Transaction<Database>;

/** The columns the status route answers from; never the payload columns. */
export const LIFECYCLE_COLUMNS = [
  'id',
  'organization_id',
  'status',
  'endpoint',
  'error',
  'warnings',
  'metadata',
  'cancelled',
  'attempt_count',
  'last_attempt_at',
  'last_failure_code',
  'created_at',
  'started_at',
  'completed_at',
  'expires_at',
] as const satisfies readonly (keyof JobRow)[];

export type JobLifecycleRow = Pick<JobRow, (typeof LIFECYCLE_COLUMNS)[number]>;
export type JobDetailRow = JobLifecycleRow &
  Pick<JobRow, 'cloud_task_name' | 'request_gcs_paths'> &
  Partial<Pick<JobRow, 'request' | 'response'>>;

/** The columns of the job object apart from its payloads. */
export const DETAIL_COLUMNS = [...LIFECYCLE_COLUMNS, 'cloud_task_name', 'request_gcs_paths'] as const;

/** Compiled once: building and compiling the query tree on every poll costs more than the query's bytes. */
let lifecycleSql: string | undefined;

export async function findJobLifecycle(db: Db, organizationId: string, jobId: string) {
  lifecycleSql ??= db
    .selectFrom('jobs')
    .select(LIFECYCLE_COLUMNS)
    .where('id', '=', '')
    .where('organization_id', '=', '')
    .compile().sql;
  const { rows } = await db.executeQuery<JobLifecycleRow>(
    CompiledQuery.raw(lifecycleSql, [jobId, organizationId]),
  );
  return rows[0];
}

/** Reads the payload columns only when asked: they can be large. */
export async function findJobDetail(
  db: Db,
  organizationId: string,
  jobId: string,
  include: { request: boolean; response: boolean },
): Promise<JobDetailRow | undefined> {
  return db
    .selectFrom('jobs')
    .select(DETAIL_COLUMNS)
    .$if(include.request, (q) => q.select('request'))
    .$if(include.response, (q) => q.select('response'))
    .where('id', '=', jobId)
    .where('organization_id', '=', organizationId)
    .executeTakeFirst();
}

export async function findJobArtifacts(
  db: Db,
  jobId: string,
  roles: readonly ArtifactRole[],
): Promise<ArtifactRecord[]> {
  if (roles.length === 0) return [];
  const rows = await db
    .selectFrom('job_artifacts')
    .select(['role', 'pointer', 'kind', 'storage_uri', 'byte_size', 'sha256', 'content_type'])
    .where('job_id', '=', jobId)
    .where('role', 'in', roles)
    .orderBy('id')
    .execute();
  return rows.map((r) => ({
    role: r.role,
    pointer: r.pointer,
    kind: r.kind,
    storageUri: r.storage_uri,
    byteSize: Number(r.byte_size),
    sha256: r.sha256,
    contentType: r.content_type,
  }));
}

export function toArtifactRows(jobId: string, artifacts: readonly ArtifactRecord[]): NewJobArtifactRow[] {
  return artifacts.map((a) => ({
    job_id: jobId,
    role: a.role,
    pointer: a.pointer,
    kind: a.kind,
    storage_uri: a.storageUri,
    byte_size: a.byteSize,
    sha256: a.sha256,
    content_type: a.contentType,
  }));
}

/**
 * Inserts a job and its artifacts; the caller owns the transaction. With an idempotency key
 * that another job of the organization already holds, nothing is inserted and the answer is
 * undefined: the caller then reads the job that won.
 */
export async function insertJobWithArtifacts(
  trx: Db,
  job: NewJobRow,
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

export async function findJobByIdempotencyKey(db: Db, organizationId: string, idempotencyKey: string) {
  return db
    .selectFrom('jobs')
    .select([...DETAIL_COLUMNS, 'request_hash'])
    .where('organization_id', '=', organizationId)
    .where('idempotency_key', '=', idempotencyKey)
    .executeTakeFirst();
}

/**
 * One statement: a validating or queued job becomes cancelled at once; a running job is flagged
 * so its worker stops at its next heartbeat. Undefined when the job is not cancellable (already
 * terminal, already flagged) or not the organization's: the caller tells those apart.
 */
export async function cancelJob(db: Db, organizationId: string, jobId: string, now: Date) {
  return db
    .updateTable('jobs')
    .set((eb) => ({
      status: eb
        .case()
        .when('status', 'in', ['validating', 'queued'])
        .then('cancelled' as const)
        .else(eb.ref('status'))
        .end(),
      completed_at: eb
        .case()
        .when('status', 'in', ['validating', 'queued'])
        .then(now)
        .else(eb.ref('completed_at'))
        .end(),
      cancelled: true,
      updated_at: now,
    }))
    .where('id', '=', jobId)
    .where('organization_id', '=', organizationId)
    .where('status', 'in', ['validating', 'queued', 'in_progress'])
    .where('cancelled', '=', false)
    .returning(DETAIL_COLUMNS)
    .executeTakeFirst();
}

/**
 * One statement: a failed or cancelled job goes back to the queue under the same id, runnable
 * now. attempt_count and last_failure_code stay, as the record of what happened before.
 */
export async function requeueJob(db: Db, organizationId: string, jobId: string, now: Date) {
  return db
    .updateTable('jobs')
    .set({
      status: 'queued',
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
    .where('status', 'in', ['failed', 'cancelled'])
    .returning(DETAIL_COLUMNS)
    .executeTakeFirst();
}

/** Lifecycle rows of many jobs in one statement (one parameter, so one prepared statement). */
export async function findJobLifecyclesByIds(db: Db, jobIds: readonly string[]) {
  return db
    .selectFrom('jobs')
    .select(LIFECYCLE_COLUMNS)
    .where('id', '=', sql<string>`any(${[...jobIds]}::text[])`)
    .execute();
}
