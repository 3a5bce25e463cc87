import { JOB_STATUSES, type JobStatus } from './job-statuses.js';

/**
 * Every change of a job's status, as data: the statuses it may start from and the one it ends
 * in. Each transition is one conditional statement in lifecycle/ whose WHERE names exactly these
 * `from` statuses, so of two racing transitions one matches no row: it lost.
 */
export const JOB_TRANSITIONS = {
  /** POST /v1/jobs: the row is inserted queued. */
  create: { from: [], to: 'queued' },
  /** A client cancels a job no worker holds: it ends at once. */
  cancel: { from: ['validating', 'queued'], to: 'cancelled' },
  /** A client cancels a running job: only `cancelled` is set; its worker stops at its next heartbeat. */
  requestCancellation: { from: ['in_progress'], to: 'in_progress' },
  /** A client retries a job that ended without a result, under the same id. */
  retry: { from: ['failed', 'cancelled'], to: 'queued' },
  /** A worker takes the job with a lease. */
  claim: { from: ['queued'], to: 'in_progress' },
  /** The lease holder reports a result. */
  complete: { from: ['in_progress'], to: 'completed' },
  /** A failure with no attempt left (or not retryable), or a lapsed lease on the last attempt. */
  fail: { from: ['in_progress'], to: 'failed' },
  /** A retryable failure, a release, or a lapsed lease with attempts left: back to the queue. */
  requeue: { from: ['in_progress'], to: 'queued' },
  /** The attempt of a job whose cancellation was asked ended: acknowledged, failed, released or lapsed. */
  endCancelled: { from: ['in_progress'], to: 'cancelled' },
  /** Retention: expires_at passed, whatever the status. */
  expire: { from: JOB_STATUSES.filter((s) => s !== 'expired'), to: 'expired' },
} as const satisfies Record<string, { from: readonly JobStatus[]; to: JobStatus }>;

export type JobTransition = keyof typeof JOB_TRANSITIONS;

/** The transition that ends a lease with `status`. */
export const LEASE_END_TRANSITIONS = {
  completed: 'complete',
  failed: 'fail',
  queued: 'requeue',
  cancelled: 'endCancelled',
} as const satisfies Record<string, JobTransition>;
