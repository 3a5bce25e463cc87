import type { Transaction } from 'kysely';
import type { Config } from '../config.js';
import type { JobDetailRow } from '../db/job-columns.js';
import type { Database } from '../db/types.js';
import type { Problem } from '../domain/job-shape.js';
import { afterFailedAttempt } from '../domain/retry-policy.js';
import { countReleasedAttempts, endLeases, type LeasedJob, type LeaseEnding } from './lease-repository.js';

/** RETRY_BASE_SECONDS and RETRY_MAX_SECONDS. */
export type RetrySettings = Pick<Config, 'retryBaseSeconds' | 'retryMaxSeconds'>;

/** How an attempt ends when its worker brings no result. */
export type AttemptEnd =
  /** `failed`: the worker reported it; `lease_expired`: the reaper took the lease back. */
  | { kind: 'failed'; outcome: 'failed' | 'lease_expired'; retryable: boolean; error: Problem }
  /** Handed back: queued again at once without using up an attempt. */
  | { kind: 'released' }
  /** The worker stopped because the client asked. */
  | { kind: 'cancelled' };

/**
 * Ends the attempts of leased jobs locked by lockLeasedJobs or lockExpiredLeases, in the caller's
 * transaction: three statements whatever the number of jobs (the released counts, the jobs, the
 * attempts). Where each job goes is the domain's rule (domain/retry-policy.ts): a failure or a
 * lapsed lease is queued again after a backoff while attempts remain and it is retryable, ends
 * cancelled when cancellation was asked, and fails otherwise; a release queues it again at once
 * (cancelled when that was asked); an acknowledged cancellation ends it cancelled.
 */
export async function endAttempts(
  trx: Transaction<Database>,
  decided: readonly { job: LeasedJob; attemptEnd: AttemptEnd }[],
  options: { now: Date; settings: RetrySettings; random?: () => number },
): Promise<JobDetailRow[]> {
  const { now, settings } = options;
  const failing = decided.filter((d) => d.attemptEnd.kind === 'failed').map((d) => d.job.id);
  const released = await countReleasedAttempts(trx, failing);
  const backoff = { baseSeconds: settings.retryBaseSeconds, maxSeconds: settings.retryMaxSeconds };
  const endings = decided.map(({ job, attemptEnd }): LeaseEnding => {
    // The last case is `cancelled`, an acknowledged cancellation.
    switch (attemptEnd.kind) {
      case 'failed': {
        const budget = {
          attemptCount: job.attempt_count,
          releasedCount: released.get(job.id) ?? 0,
          maxAttempts: job.max_attempts,
          cancelled: job.cancelled,
        };
        const end = afterFailedAttempt(budget, attemptEnd, { now, backoff, random: options.random });
        const { outcome, error } = attemptEnd;
        return { job, end, outcome, error, lastFailureCode: error.code };
      }
      case 'released':
        return {
          job,
          end: job.cancelled ? { status: 'cancelled' } : { status: 'queued', runAfter: now },
          outcome: 'released',
        };
      default:
        return { job, end: { status: 'cancelled' }, outcome: 'cancelled' };
    }
  });
  return endLeases(trx, endings, now);
}
