import type { Transaction } from 'kysely';
import type { Config } from '../config.js';
import type { JobDetailRow } from '../db/job-columns.js';
import type { Database } from '../db/types.js';
import type { Problem } from '../domain/job-shape.js';
import type { LeaseRef } from '../domain/lease.js';
import { afterFailedAttempt } from '../domain/retry-policy.js';
import { endLease, finishAttempt, type LeasedJob } from './lease-repository.js';

/**
 * How an attempt ends when its worker brings no result. Each function takes a job locked by
 * lockLeasedJob or lockExpiredLeases, in the caller's transaction, and ends the lease and the
 * attempt row together.
 */

const leaseOf = (job: LeasedJob): LeaseRef => ({
  organizationId: job.organization_id,
  jobId: job.id,
  leaseToken: job.lease_token,
});

/** RETRY_BASE_SECONDS and RETRY_MAX_SECONDS. */
export type RetrySettings = Pick<Config, 'retryBaseSeconds' | 'retryMaxSeconds'>;

export interface FailedAttempt {
  /** `failed`: the worker reported it; `lease_expired`: the reaper took the lease back. */
  outcome: 'failed' | 'lease_expired';
  retryable: boolean;
  error: Problem;
}

/**
 * A failure or a lapsed lease: queued again after a backoff while attempts remain and the failure
 * is retryable, cancelled when cancellation was asked, failed otherwise (domain/retry-policy.ts).
 * `releasedCount` is the job's released attempts, which do not use up an attempt.
 */
export async function endFailedAttempt(
  trx: Transaction<Database>,
  job: LeasedJob,
  releasedCount: number,
  failure: FailedAttempt,
  options: { now: Date; settings: RetrySettings; random?: () => number },
): Promise<JobDetailRow | undefined> {
  const end = afterFailedAttempt(
    {
      attemptCount: job.attempt_count,
      releasedCount,
      maxAttempts: job.max_attempts,
      cancelled: job.cancelled,
    },
    failure,
    {
      now: options.now,
      backoff: {
        baseSeconds: options.settings.retryBaseSeconds,
        maxSeconds: options.settings.retryMaxSeconds,
      },
      random: options.random,
    },
  );
  const row = await endLease(trx, leaseOf(job), end, {
    now: options.now,
    lastFailureCode: failure.error.code,
  });
  await finishAttempt(trx, job.lease_token, failure.outcome, { now: options.now, error: failure.error });
  return row;
}

/** Handed back: queued again at once without using up an attempt; cancelled when that was asked. */
export async function endReleasedAttempt(trx: Transaction<Database>, job: LeasedJob, now: Date) {
  const row = await endLease(
    trx,
    leaseOf(job),
    job.cancelled ? { status: 'cancelled' } : { status: 'queued', runAfter: now },
    { now },
  );
  await finishAttempt(trx, job.lease_token, 'released', { now });
  return row;
}

/** The worker stopped because the client asked: the job ends cancelled. */
export async function endCancelledAttempt(trx: Transaction<Database>, job: LeasedJob, now: Date) {
  const row = await endLease(trx, leaseOf(job), { status: 'cancelled' }, { now });
  await finishAttempt(trx, job.lease_token, 'cancelled', { now });
  return row;
}
