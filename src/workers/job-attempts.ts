import type { Kysely } from 'kysely';
import type { Database } from '../db/types.js';
import { jobNotFound } from '../errors.js';
import type { JobErrorValue } from './worker-repository.js';
import { findLeaseState, listJobAttempts } from './worker-repository.js';
import type { JobAttemptView } from './worker-schemas.js';

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/** Every attempt of the organization's job, first to last; lease tokens stay the workers' secret. */
export async function readJobAttempts(
  db: Kysely<Database>,
  organizationId: string,
  jobId: string,
): Promise<JobAttemptView[]> {
  if (!(await findLeaseState(db, organizationId, jobId))) throw jobNotFound(jobId);
  const rows = await listJobAttempts(db, jobId);
  return rows.map((r) => ({
    object: 'job.attempt',
    attempt: r.attempt,
    worker_id: r.worker_id,
    started_at: seconds(r.started_at),
    finished_at: r.finished_at === null ? null : seconds(r.finished_at),
    outcome: r.outcome,
    error: r.error as JobErrorValue | null,
  }));
}
