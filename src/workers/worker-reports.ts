import type { Transaction } from 'kysely';
import type { JobDetailRow } from '../db/job-columns.js';
import type { Database } from '../db/types.js';
import type { AttemptOutcome } from '../domain/attempt-outcomes.js';
import { AppError, jobNotFound } from '../domain/errors.js';
import { randomId } from '../domain/ids.js';
import type { JobView, Problem } from '../domain/job-shape.js';
import type { LeaseRef } from '../domain/lease.js';
import type { JobContext } from '../jobs/job-context.js';
import { findJobDetail } from '../jobs/job-repository.js';
import { lightweightView } from '../jobs/job-view.js';
import { endCancelledAttempt, endFailedAttempt, endReleasedAttempt } from '../lifecycle/lease-endings.js';
import {
  completeLease,
  countReleasedAttempts,
  type LeasedJob,
  lockLeasedJob,
  renewLease,
} from '../lifecycle/lease-repository.js';
import { writeWithOffload } from '../storage/offloaded-write.js';
import { findAttemptOutcome, findLeaseState } from './worker-repository.js';

/** What a lease holder reports: heartbeat, complete, fail, cancelled, release. */

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/**
 * Why a lease operation matched no row. Another organization's job is a 404 like a missing one;
 * a job that is no longer in progress under this token is a 409: its lease expired and was
 * taken back, or the job already ended.
 */
async function leaseRejection(ctx: JobContext, lease: LeaseRef): Promise<AppError> {
  const state = await findLeaseState(ctx.db, lease.organizationId, lease.jobId);
  if (!state) return jobNotFound(lease.jobId);
  const details = { job_id: lease.jobId, status: state.status };
  if (state.status !== 'in_progress') {
    return new AppError(
      'conflict',
      `Job '${lease.jobId}' is ${state.status}: this lease no longer holds it, and nothing was changed.`,
      details,
    );
  }
  return new AppError(
    'conflict',
    `This lease_token is not the current lease of job '${lease.jobId}': the lease ran out and the job was handed to another worker. Nothing was changed.`,
    details,
  );
}

/**
 * A report that found its lease already ended. When this very lease ended with this very
 * outcome, the report is a resend (the worker lost the first answer): it gets the job again,
 * not a 409 it could not tell from a takeover. Anything else is a 404/409.
 */
async function replayOrReject(ctx: JobContext, lease: LeaseRef, outcome: AttemptOutcome): Promise<JobView> {
  if ((await findAttemptOutcome(ctx.db, lease.jobId, lease.leaseToken)) === outcome) {
    const row = await findJobDetail(ctx.db, lease.organizationId, lease.jobId, {
      request: false,
      response: false,
    });
    if (row) return lightweightView(row);
  }
  throw await leaseRejection(ctx, lease);
}

/** Locks the leased job and lets `end` end its attempt in the same transaction; a lease not held is a 404/409. */
async function withLease(
  ctx: JobContext,
  lease: LeaseRef,
  outcome: AttemptOutcome,
  end: (trx: Transaction<Database>, job: LeasedJob, now: Date) => Promise<JobDetailRow | undefined>,
): Promise<JobView> {
  const now = ctx.clock.now();
  const row = await ctx.db.transaction().execute(async (trx) => {
    const job = await lockLeasedJob(trx, lease);
    return job && end(trx, job, now);
  });
  if (!row) return replayOrReject(ctx, lease, outcome);
  return lightweightView(row);
}

/**
 * Renews the lease for `leaseSeconds` from now. The token alone is the fence: a lease that ran
 * out but was not taken back by the reaper yet is renewed, since no other worker can hold the job.
 */
export async function heartbeat(ctx: JobContext, lease: LeaseRef, leaseSeconds: number) {
  const now = ctx.clock.now();
  const renewed = await renewLease(ctx.db, lease, new Date(now.getTime() + leaseSeconds * 1000), now);
  if (!renewed) throw await leaseRejection(ctx, lease);
  return { cancel_requested: renewed.cancelled, lease_expires_at: seconds(renewed.lease_expires_at) };
}

/**
 * Stores the result. Large parts go to object storage first, under a prefix of this report, so a
 * stale worker's or a resent report's objects never replace the current ones; they are deleted
 * again when the lease turns out not to be held (rare: no lookup is spent on every completion to
 * catch it earlier). A job whose cancellation was asked still completes: the work is done.
 */
export async function complete(
  ctx: JobContext,
  lease: LeaseRef,
  input: { response: { status_code: number; body: unknown }; warnings?: Problem[] },
): Promise<JobView> {
  const row = await writeWithOffload(
    ctx,
    input.response,
    {
      jobId: lease.jobId,
      keyPrefix: `${lease.organizationId}/${lease.jobId}/${lease.leaseToken}/${randomId(8)}`,
      role: 'response',
      settings: ctx.config,
      unavailable: {
        message: 'Object storage could not store the response; the lease is unchanged, try again.',
        details: { job_id: lease.jobId },
      },
    },
    ({ stored, artifacts }) =>
      completeLease(
        ctx.db,
        lease,
        { response: stored, warnings: input.warnings ?? null, artifacts },
        ctx.clock.now(),
      ),
  );
  if (!row) return replayOrReject(ctx, lease, 'succeeded');
  return lightweightView(row);
}

/** Records the failure on the attempt; the job is queued again after a backoff, or fails. */
export async function fail(
  ctx: JobContext,
  lease: LeaseRef,
  input: { error: Problem; retryable: boolean },
): Promise<JobView> {
  return withLease(ctx, lease, 'failed', async (trx, job, now) => {
    const released = await countReleasedAttempts(trx, [job.id]);
    return endFailedAttempt(
      trx,
      job,
      released.get(job.id) ?? 0,
      { outcome: 'failed', retryable: input.retryable, error: input.error },
      { now, settings: ctx.config, random: ctx.random },
    );
  });
}

/** The worker stopped because the client asked: the job ends cancelled. */
export async function acknowledgeCancel(ctx: JobContext, lease: LeaseRef): Promise<JobView> {
  return withLease(ctx, lease, 'cancelled', async (trx, job, now) => {
    if (!job.cancelled) {
      throw new AppError(
        'conflict',
        `Job '${lease.jobId}' has no cancellation request; report it with complete, fail or release.`,
        { job_id: lease.jobId, status: 'in_progress' },
      );
    }
    return endCancelledAttempt(trx, job, now);
  });
}

/**
 * Hands the job back (a worker shutting down): queued again at once, and the attempt does not
 * use up one of the job's attempts. A job whose cancellation was asked ends cancelled instead.
 */
export async function release(ctx: JobContext, lease: LeaseRef): Promise<JobView> {
  return withLease(ctx, lease, 'released', (trx, job, now) => endReleasedAttempt(trx, job, now));
}
