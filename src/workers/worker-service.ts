import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/types.js';
import { AppError, jobNotFound } from '../errors.js';
import { randomId } from '../ids.js';
import { findJobDetail, type JobDetailRow } from '../jobs/job-repository.js';
import type { JobView } from '../jobs/job-schemas.js';
import { toJobView } from '../jobs/job-view.js';
import { OffloadError, offloadDocument } from '../storage/artifact-offloader.js';
import type { ArtifactRecord } from '../storage/artifact-restorer.js';
import { discardObjects } from '../storage/discard-objects.js';
import { type ObjectStore, StorageError } from '../storage/object-store.js';
import type { AttemptOutcome } from './attempt-outcomes.js';
import type { BackoffPolicy } from './backoff.js';
import { afterFailedAttempt } from './retry-policy.js';
import {
  completeLease,
  countReleasedAttempts,
  endLease,
  findAttemptOutcome,
  findLeaseState,
  finishAttempt,
  insertResponseArtifacts,
  type LeasedJob,
  type LeaseRef,
  lockLeasedJob,
  renewLease,
} from './worker-repository.js';
import type { CompleteInput, FailInput } from './worker-schemas.js';

export interface LeaseDeps {
  db: Kysely<Database>;
  store: ObjectStore;
  now: () => Date;
  backoff: BackoffPolicy;
  offload: { dataUrlThreshold: number; documentLimit: number; concurrency: number };
  random?: () => number;
}

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
const lightweight = (row: JobDetailRow): JobView =>
  toJobView(row, { request: null, response: null, warnings: [] });

/**
 * Why a lease operation matched no row. Another organization's job is a 404 like a missing one;
 * a job that is no longer in progress under this token is a 409: its lease expired and was
 * taken back, or the job already ended.
 */
async function leaseRejection(db: Kysely<Database>, lease: LeaseRef): Promise<AppError> {
  const state = await findLeaseState(db, lease.organizationId, lease.jobId);
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
async function replayOrReject(deps: LeaseDeps, lease: LeaseRef, outcome: AttemptOutcome): Promise<JobView> {
  if ((await findAttemptOutcome(deps.db, lease.jobId, lease.leaseToken)) === outcome) {
    const row = await findJobDetail(deps.db, lease.organizationId, lease.jobId, {
      request: false,
      response: false,
    });
    if (row) return lightweight(row);
  }
  throw await leaseRejection(deps.db, lease);
}

/** Locks the leased job, lets `change` end the lease in the same transaction; a lease not held is a 404/409. */
async function withLease(
  deps: LeaseDeps,
  lease: LeaseRef,
  outcome: AttemptOutcome,
  change: (trx: Transaction<Database>, job: LeasedJob) => Promise<JobDetailRow | undefined>,
): Promise<JobView> {
  const row = await deps.db.transaction().execute(async (trx) => {
    const job = await lockLeasedJob(trx, lease);
    return job && change(trx, job);
  });
  if (!row) return replayOrReject(deps, lease, outcome);
  return lightweight(row);
}

/**
 * Renews the lease for `leaseSeconds` from now. The token alone is the fence: a lease that ran
 * out but was not taken back by the reaper yet is renewed, since no other worker can hold the job.
 */
export async function heartbeat(deps: LeaseDeps, lease: LeaseRef, leaseSeconds: number) {
  const now = deps.now();
  const renewed = await renewLease(deps.db, lease, new Date(now.getTime() + leaseSeconds * 1000), now);
  if (!renewed) throw await leaseRejection(deps.db, lease);
  return {
    cancel_requested: renewed.cancelled,
    lease_expires_at: seconds(renewed.lease_expires_at as Date),
  };
}

/**
 * Stores the result. Large parts go to object storage first, under a prefix of this report, so a
 * stale worker's or a resent report's objects never replace the current ones; they are deleted again when the lease
 * turns out not to be held (rare: no lookup is spent on every completion to catch it earlier).
 * A job whose cancellation was asked still completes: the work is done.
 */
export async function complete(deps: LeaseDeps, lease: LeaseRef, input: CompleteInput): Promise<JobView> {
  let offloaded: { stored: unknown; artifacts: ArtifactRecord[] };
  try {
    offloaded = await offloadDocument(deps.store, input.response, {
      // A fresh folder per report: a resent report must not overwrite, then discard, the objects
      // of the report that completed the job.
      keyPrefix: `${lease.organizationId}/${lease.jobId}/${lease.leaseToken}/${randomId(8)}`,
      role: 'response',
      ...deps.offload,
    });
  } catch (error) {
    if (!(error instanceof OffloadError)) throw error;
    await discardObjects(deps.db, deps.store, error.written, lease.jobId);
    if (!(error.cause instanceof StorageError)) throw error.cause;
    throw new AppError(
      'service_unavailable',
      'Object storage could not store the response; the lease is unchanged, try again.',
      { job_id: lease.jobId },
    );
  }
  const now = deps.now();
  let row: JobDetailRow | undefined;
  try {
    row =
      offloaded.artifacts.length === 0
        ? await completeLease(
            deps.db,
            lease,
            { response: offloaded.stored, warnings: input.warnings ?? null },
            now,
          )
        : await deps.db.transaction().execute(async (trx) => {
            const ended = await endLease(
              trx,
              lease,
              { status: 'completed', response: offloaded.stored, warnings: input.warnings ?? null },
              { now },
            );
            if (!ended) return undefined;
            await insertResponseArtifacts(trx, lease.jobId, offloaded.artifacts);
            await finishAttempt(trx, lease.leaseToken, 'succeeded', { now });
            return ended;
          });
  } catch (error) {
    await discardObjects(deps.db, deps.store, offloaded.artifacts, lease.jobId);
    throw error;
  }
  if (!row) {
    await discardObjects(deps.db, deps.store, offloaded.artifacts, lease.jobId);
    return replayOrReject(deps, lease, 'succeeded');
  }
  return lightweight(row);
}

/** Records the failure on the attempt; the job is queued again after a backoff, or fails. */
export async function fail(deps: LeaseDeps, lease: LeaseRef, input: Omit<FailInput, 'lease_token'>) {
  const now = deps.now();
  return withLease(deps, lease, 'failed', async (trx, job) => {
    const released = await countReleasedAttempts(trx, [job.id]);
    const end = afterFailedAttempt(
      {
        attemptCount: job.attempt_count,
        releasedCount: released.get(job.id) ?? 0,
        maxAttempts: job.max_attempts,
        cancelled: job.cancelled,
      },
      { retryable: input.retryable, error: input.error },
      { now, backoff: deps.backoff, random: deps.random },
    );
    const row = await endLease(trx, lease, end, { now, lastFailureCode: input.error.code });
    await finishAttempt(trx, lease.leaseToken, 'failed', { now, error: input.error });
    return row;
  });
}

/** The worker stopped because the client asked: the job ends cancelled. */
export async function acknowledgeCancel(deps: LeaseDeps, lease: LeaseRef) {
  const now = deps.now();
  return withLease(deps, lease, 'cancelled', async (trx, job) => {
    if (!job.cancelled) {
      throw new AppError(
        'conflict',
        `Job '${lease.jobId}' has no cancellation request; report it with complete, fail or release.`,
        { job_id: lease.jobId, status: 'in_progress' },
      );
    }
    const row = await endLease(trx, lease, { status: 'cancelled' }, { now });
    await finishAttempt(trx, lease.leaseToken, 'cancelled', { now });
    return row;
  });
}

/**
 * Hands the job back (a worker shutting down): queued again at once, and the attempt does not
 * use up one of the job's attempts. A job whose cancellation was asked ends cancelled instead.
 */
export async function release(deps: LeaseDeps, lease: LeaseRef) {
  const now = deps.now();
  return withLease(deps, lease, 'released', async (trx, job) => {
    const row = await endLease(
      trx,
      lease,
      job.cancelled ? { status: 'cancelled' } : { status: 'queued', runAfter: now },
      { now },
    );
    await finishAttempt(trx, lease.leaseToken, 'released', { now });
    return row;
  });
}
