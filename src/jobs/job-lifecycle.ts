import type { JobDetailRow } from '../db/job-columns.js';
import { AppError, jobNotFound } from '../domain/errors.js';
import { cancelJob, retryJob } from '../lifecycle/client-transitions-repository.js';
import type { JobContext } from './job-context.js';
import { findJobLifecycle } from './job-repository.js';

/** Explains why a conditional transition matched no row: not the caller's job, or a state conflict. */
async function conflictOrNotFound(ctx: JobContext, organizationId: string, jobId: string, action: string) {
  const current = await findJobLifecycle(ctx.db, organizationId, jobId);
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

/** POST /v1/jobs/{id}/cancel: at once when no worker holds the job, else flagged for its worker. */
export async function cancel(ctx: JobContext, organizationId: string, jobId: string): Promise<JobDetailRow> {
  const row = await cancelJob(ctx.db, organizationId, jobId, ctx.clock.now());
  if (!row) throw await conflictOrNotFound(ctx, organizationId, jobId, 'cancelled');
  return row;
}

/** POST /v1/jobs/{id}/retry: a failed or cancelled job is queued again. */
export async function retry(ctx: JobContext, organizationId: string, jobId: string): Promise<JobDetailRow> {
  const row = await retryJob(ctx.db, organizationId, jobId, ctx.clock.now());
  if (!row) throw await conflictOrNotFound(ctx, organizationId, jobId, 'retried');
  return row;
}
