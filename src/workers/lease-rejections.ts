import type { AttemptOutcome } from '../domain/attempt-outcomes.js';
import { AppError, jobNotFound } from '../domain/errors.js';
import type { JobView } from '../domain/job-shape.js';
import type { LeaseRef } from '../domain/lease.js';
import type { JobContext } from '../jobs/job-context.js';
import { findJobDetailsByIds } from '../jobs/job-repository.js';
import { lightweightView } from '../jobs/job-view.js';
import { findAttemptOutcomes, findLeaseStates } from './worker-repository.js';

export interface Unmatched {
  lease: LeaseRef;
  /**
   * The outcome the report would have given its attempt. When this very lease already ended with
   * it, the report is a resend (the worker lost the first answer): it gets the job again, not a
   * 409 it could not tell from a takeover. Undefined for a heartbeat, which is never a resend.
   */
  outcome?: AttemptOutcome;
}

export type Explained = { ok: true; job: JobView } | { ok: false; error: AppError };

function rejection(lease: LeaseRef, status: string): AppError {
  const details = { job_id: lease.jobId, status };
  if (status !== 'in_progress') {
    return new AppError(
      'conflict',
      `Job '${lease.jobId}' is ${status}: this lease no longer holds it, and nothing was changed.`,
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
 * Why reports matched no lease, all of a batch in three statements at most: a resend of the
 * outcome the lease already ended with answers the job (200); another organization's job is a
 * 404 like a missing one; a job no longer in progress under this token is a 409 (its lease ran
 * out and was taken back, or the job ended).
 */
export async function explainUnmatched(ctx: JobContext, items: readonly Unmatched[]): Promise<Explained[]> {
  if (items.length === 0) return [];
  const withOutcome = items.filter((i) => i.outcome !== undefined);
  const ended = new Map(
    (
      await findAttemptOutcomes(
        ctx.db,
        withOutcome.map((i) => i.lease.leaseToken),
      )
    ).map((a) => [a.lease_token, a]),
  );
  const isResend = (i: Unmatched) => {
    const attempt = ended.get(i.lease.leaseToken);
    return attempt !== undefined && attempt.job_id === i.lease.jobId && attempt.outcome === i.outcome;
  };
  const ids = [...new Set(items.map((i) => i.lease.jobId))];
  const [details, states] = await Promise.all([
    findJobDetailsByIds(ctx.db, [...new Set(items.filter(isResend).map((i) => i.lease.jobId))]),
    findLeaseStates(ctx.db, ids),
  ]);
  const detailOf = new Map(details.map((row) => [row.id, row]));
  const stateOf = new Map(states.map((row) => [row.id, row]));
  return items.map((item): Explained => {
    const { lease } = item;
    const row = detailOf.get(lease.jobId);
    const callers = (organizationId: string) =>
      lease.organizationId === null || organizationId === lease.organizationId;
    if (isResend(item) && row && callers(row.organization_id)) {
      return { ok: true, job: lightweightView(row) };
    }
    const state = stateOf.get(lease.jobId);
    if (!state || !callers(state.organization_id)) {
      return { ok: false, error: jobNotFound(lease.jobId) };
    }
    return { ok: false, error: rejection(lease, state.status) };
  });
}
