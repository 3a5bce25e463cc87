import { CompiledQuery, sql } from 'kysely';
import {
  DETAIL_COLUMNS,
  type JobDetailRow,
  type JobLifecycleRow,
  LIFECYCLE_COLUMNS,
} from '../db/job-columns.js';
import type { Db } from '../db/types.js';
import type { ArtifactRecord, ArtifactRole } from '../domain/artifacts.js';

/** Reads of jobs and their artifacts and attempts. Every state change is in ../lifecycle/. */

/** Compiled once: building and compiling the query tree on every poll costs more than the query's bytes. */
let lifecycleSql: string | undefined;

/** By primary key; the status route's one query. */
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

/** Lifecycle rows of many jobs in one statement (one parameter, so one prepared statement). */
export async function findJobLifecyclesByIds(db: Db, jobIds: readonly string[]) {
  return db
    .selectFrom('jobs')
    .select(LIFECYCLE_COLUMNS)
    .where('id', '=', sql<string>`any(${[...jobIds]}::text[])`)
    .execute();
}

/** By primary key; reads the payload columns only when asked: they can be large. */
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

/** Lightweight rows of many jobs in one statement (jobs_pkey), payloads aside. */
export async function findJobDetailsByIds(db: Db, jobIds: readonly string[]): Promise<JobDetailRow[]> {
  if (jobIds.length === 0) return [];
  return db
    .selectFrom('jobs')
    .select(DETAIL_COLUMNS)
    .where('id', '=', sql<string>`any(${[...jobIds]}::text[])`)
    .execute();
}

/** By primary key: whether the job exists and is the organization's. */
export async function jobBelongsTo(db: Db, organizationId: string, jobId: string): Promise<boolean> {
  const row = await db
    .selectFrom('jobs')
    .select('id')
    .where('id', '=', jobId)
    .where('organization_id', '=', organizationId)
    .executeTakeFirst();
  return row !== undefined;
}

/** jobs_idempotency_idx (organization_id, idempotency_key). */
export async function findJobByIdempotencyKey(db: Db, organizationId: string, idempotencyKey: string) {
  return db
    .selectFrom('jobs')
    .select([...DETAIL_COLUMNS, 'request_hash'])
    .where('organization_id', '=', organizationId)
    .where('idempotency_key', '=', idempotencyKey)
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

/** Every attempt of a job, first to last (primary key job_id, attempt). */
export async function listJobAttempts(db: Db, jobId: string) {
  return db
    .selectFrom('job_attempts')
    .select(['attempt', 'worker_id', 'started_at', 'finished_at', 'outcome', 'error'])
    .where('job_id', '=', jobId)
    .orderBy('attempt')
    .execute();
}
