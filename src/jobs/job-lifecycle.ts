import type { Kysely } from 'kysely';
import type { Database } from '../db/types.js';
import { AppError, jobNotFound } from '../errors.js';
import { cancelJob, findJobLifecycle, type JobDetailRow, requeueJob } from './job-repository.js';

/** Explains why a conditional transition matched no row: not the caller's job, or a state conflict. */
async function conflictOrNotFound(
  db: Kysely<Database>,
  organizationId: string,
  jobId: string,
  action: string,
) {
  const current = await findJobLifecycle(db, organizationId, jobId);
  if (!current) return jobNotFound(jobId);
  const state =
    current.status === 'in_progress' && current.cancelled
      ? 'in_progress and already being cancelled'
      : current.status;
  return new AppError('conflict', `Job '${jobId}' cannot be ${action}: it is ${state}.`, {
    job_id: jobId,
    status: current.status,
    cancelled: current.cancelled,
  });
}

export async function cancel(
  db: Kysely<Database>,
  organizationId: string,
  jobId: string,
  now: Date,
): Promise<JobDetailRow> {
  const row = await cancelJob(db, organizationId, jobId, now);
  if (!row) throw await conflictOrNotFound(db, organizationId, jobId, 'cancelled');
  return row;
}

export async function retry(
  db: Kysely<Database>,
  organizationId: string,
  jobId: string,
  now: Date,
): Promise<JobDetailRow> {
  const row = await requeueJob(db, organizationId, jobId, now);
  if (!row) throw await conflictOrNotFound(db, organizationId, jobId, 'retried');
  return row;
}
