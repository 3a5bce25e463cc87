import type { JobView, Problem } from '../domain/job-shape.js';
import type { LeaseRef } from '../domain/lease.js';
import type { JobContext } from '../jobs/job-context.js';
import { applyReports, type HeartbeatAnswer, type Report } from './report-batch.js';

/**
 * The single report routes: each is a batch of one (report-batch.ts), so that a report means
 * exactly the same alone and in POST /v1/worker/reports. A report that cannot apply throws its
 * error (404, 409, 422, 503) for the error handler.
 */
async function applyOne(ctx: JobContext, report: Report) {
  const [result] = await applyReports(ctx, [report]);
  if (!result.ok) throw result.error;
  return result;
}

/**
 * Renews the lease for `leaseSeconds` from now. The token alone is the fence: a lease that ran
 * out but was not taken back by the reaper yet is renewed, since no other worker can hold the job.
 */
export async function heartbeat(
  ctx: JobContext,
  lease: LeaseRef,
  leaseSeconds: number,
): Promise<HeartbeatAnswer> {
  return (await applyOne(ctx, { type: 'heartbeat', lease, leaseSeconds })).heartbeat as HeartbeatAnswer;
}

/** Stores the result; large parts go to object storage first. A job being cancelled still completes. */
export async function complete(
  ctx: JobContext,
  lease: LeaseRef,
  input: { response: { status_code: number; body: unknown }; warnings?: Problem[] },
): Promise<JobView> {
  return (await applyOne(ctx, { type: 'complete', lease, ...input })).job as JobView;
}

/** Records the failure on the attempt; the job is queued again after a backoff, or fails. */
export async function fail(ctx: JobContext, lease: LeaseRef, input: { error: Problem; retryable: boolean }) {
  return (await applyOne(ctx, { type: 'fail', lease, ...input })).job as JobView;
}

/** The worker stopped because the client asked: the job ends cancelled. */
export async function acknowledgeCancel(ctx: JobContext, lease: LeaseRef): Promise<JobView> {
  return (await applyOne(ctx, { type: 'cancelled', lease })).job as JobView;
}

/**
 * Hands the job back (a worker shutting down): queued again at once, and the attempt does not
 * use up one of the job's attempts. A job whose cancellation was asked ends cancelled instead.
 */
export async function release(ctx: JobContext, lease: LeaseRef): Promise<JobView> {
  return (await applyOne(ctx, { type: 'release', lease })).job as JobView;
}
