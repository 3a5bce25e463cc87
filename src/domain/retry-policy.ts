import { type BackoffPolicy, retryDelayMs } from './backoff.js';
import type { Problem } from './job-shape.js';
import type { LeaseEnd } from './lease.js';

export interface AttemptBudget {
  /** Every claim so far, released ones included. */
  attemptCount: number;
  /** Claims handed back with release: they do not use up an attempt. */
  releasedCount: number;
  maxAttempts: number;
  cancelled: boolean;
}

/**
 * Where a job goes when its attempt ends without a result (a failure, or a lapsed lease).
 * A job whose cancellation was asked never goes back to the queue: it ends cancelled. Otherwise
 * a retryable failure with attempts left is queued again after a backoff; anything else fails
 * with `error`.
 */
export function afterFailedAttempt(
  budget: AttemptBudget,
  failure: { retryable: boolean; error: Problem },
  options: { now: Date; backoff: BackoffPolicy; random?: () => number },
): LeaseEnd {
  if (budget.cancelled) return { status: 'cancelled' };
  const used = budget.attemptCount - budget.releasedCount;
  if (!failure.retryable || used >= budget.maxAttempts) return { status: 'failed', error: failure.error };
  const delay = retryDelayMs(used, options.backoff, options.random);
  return { status: 'queued', runAfter: new Date(options.now.getTime() + delay) };
}
