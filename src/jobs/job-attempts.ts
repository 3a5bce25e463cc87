import { jobNotFound } from '../domain/errors.js';
import type { JobContext } from './job-context.js';
import { jobBelongsTo, listJobAttempts } from './job-repository.js';
import type { JobAttemptView } from './job-schemas.js';

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/** Every attempt of the organization's job, first to last; lease tokens stay the workers' secret. */
export async function readJobAttempts(
  ctx: Pick<JobContext, 'db'>,
  organizationId: string,
  jobId: string,
): Promise<JobAttemptView[]> {
  if (!(await jobBelongsTo(ctx.db, organizationId, jobId))) throw jobNotFound(jobId);
  const rows = await listJobAttempts(ctx.db, jobId);
  return rows.map((r) => ({
    object: 'job.attempt',
    attempt: r.attempt,
    worker_id: r.worker_id,
    started_at: seconds(r.started_at),
    finished_at: r.finished_at === null ? null : seconds(r.finished_at),
    outcome: r.outcome,
    error: r.error,
  }));
}
