import { sql } from 'kysely';
import type { Db } from '../db/types.js';
import { statusAfter, statusAllows } from './transition-sql.js';

/**
 * One statement per batch (transition `expire`): marks up to `limit` jobs past their expires_at
 * as expired, in the order of jobs_expiry_idx (expires_at) where status <> 'expired', drops
 * their stored request/response, ends the attempt of a job that was running, and moves their
 * artifact rows to the storage deletion queue.
 * Rows another sweeper holds are skipped, so sweepers in several replicas share the work.
 */
export async function expireDueJobs(db: Db, now: Date, limit: number): Promise<number> {
  const result = await sql<{ expired: string }>`
    with due as (
      select id, lease_token from jobs
      where ${statusAllows('expire')} and expires_at <= ${now}
      order by expires_at
      limit ${limit}
      for update skip locked
    ), expired as (
      update jobs set
        status = ${statusAfter('expire')},
        request = null,
        response = null,
        request_gcs_paths = null,
        completed_at = coalesce(jobs.completed_at, ${now}),
        updated_at = ${now},
        lease_owner = null,
        lease_token = null,
        lease_expires_at = null
      from due
      where jobs.id = due.id
      returning jobs.id
    ), ended_attempts as (
      update job_attempts set finished_at = ${now}, outcome = 'expired'
      from due
      where job_attempts.lease_token = due.lease_token and job_attempts.finished_at is null
    ), moved as (
      delete from job_artifacts using expired
      where job_artifacts.job_id = expired.id
      returning job_artifacts.storage_uri, job_artifacts.job_id
    ), queued as (
      insert into storage_deletions (storage_uri, job_id, next_attempt_at)
      select storage_uri, job_id, ${now} from moved
    )
    select count(*) as expired from expired`.execute(db);
  return Number(result.rows[0]?.expired ?? 0);
}
