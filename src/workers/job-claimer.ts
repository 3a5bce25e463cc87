import { JOB_QUEUED_CHANNEL } from '../db/notification-listener.js';
import type { JobView } from '../domain/job-shape.js';
import type { JobContext } from '../jobs/job-context.js';
import { type PresentOptions, presentJob, restoreDeadline } from '../jobs/job-reader.js';
import { mapWithConcurrency } from '../lib/concurrency.js';
import {
  type ClaimedJobRow,
  claimQueuedJobs,
  lockLimitedOrganizations,
} from '../lifecycle/claim-repository.js';
import type { LimitedOrganizations } from './limited-organizations.js';
import { release } from './worker-reports.js';
import { findNextRunAfter } from './worker-repository.js';

export interface ClaimRequest {
  /** The organizations whose jobs may be claimed; null for every one (a fleet key without a filter). */
  organizationIds: readonly string[] | null;
  /** Which organizations have a max_in_flight: those claims take their claim lock first. */
  limits: LimitedOrganizations;
  workerId: string;
  /** Stored (`/v1/...`) forms; null for every endpoint. */
  endpoints: readonly string[] | null;
  limit: number;
  leaseSeconds: number;
  waitSeconds: number;
  /** The request's logger: requests that could not be restored are logged there. */
  log?: PresentOptions['log'];
}

export interface ClaimedJob {
  job: JobView;
  lease_token: string;
  lease_expires_at: number;
}

const FALLBACK_POLL_MS = 1000;
const RESTORES_AT_ONCE = 4;

/**
 * One claim statement; in a transaction that first takes the claim locks of the limited
 * organizations it may serve, when there are any, so that it counts their jobs in progress alone.
 */
async function claimOnce(ctx: JobContext, input: ClaimRequest): Promise<ClaimedJobRow[]> {
  const now = ctx.clock.now();
  const query = {
    organizationIds: input.organizationIds,
    workerId: input.workerId,
    endpoints: input.endpoints,
    limit: input.limit,
    leaseExpiresAt: new Date(now.getTime() + input.leaseSeconds * 1000),
    now,
  };
  if (!(await input.limits.anyAmong(input.organizationIds))) {
    return claimQueuedJobs(ctx.db, { ...query, lockedOrganizationIds: [] });
  }
  return ctx.db.transaction().execute(async (trx) => {
    const locked = await lockLimitedOrganizations(trx, input.organizationIds);
    return claimQueuedJobs(trx, { ...query, lockedOrganizationIds: locked });
  });
}

/**
 * The claimed jobs with their restored requests. Restores end within RESTORE_TIMEOUT_MS and half
 * the lease, whichever is sooner, so a slow or hung store never hands out a lease that has
 * already run out: a request that cannot be read in time comes with its warning instead.
 */
function present(
  ctx: JobContext,
  rows: readonly ClaimedJobRow[],
  input: ClaimRequest,
): Promise<ClaimedJob[]> {
  const { leaseSeconds, log } = input;
  const deadline = Math.min(restoreDeadline(ctx), performance.now() + (leaseSeconds * 1000) / 2);
  return mapWithConcurrency(rows, RESTORES_AT_ONCE, async (row) => ({
    job: await presentJob(ctx, row, { request: true, response: false }, { deadline, log }),
    lease_token: row.lease_token,
    lease_expires_at: Math.floor(row.lease_expires_at.getTime() / 1000),
  }));
}

/** Resolves after `ms`, when woken, or when `signal` aborts, whichever comes first. */
function pause(ms: number, signal: AbortSignal | undefined, setWake: (wake: () => void) => void) {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    setWake(done);
  });
}

/**
 * Claims up to `limit` runnable jobs. With none and `waitSeconds > 0`, waits for a job_queued
 * notification of a wanted endpoint (or for the next delayed retry to become due) and tries
 * again, until the deadline. No query runs while waiting. When the caller goes away
 * (`signal`), jobs claimed in that moment are released at once rather than left to the reaper.
 */
export async function claimJobs(
  ctx: JobContext,
  input: ClaimRequest,
  signal?: AbortSignal,
): Promise<ClaimedJob[]> {
  if (input.waitSeconds <= 0) return deliver(ctx, input, await claimOnce(ctx, input), signal);

  // Real elapsed time, not the clock of the rows: the wait is the caller's, in seconds they live.
  const deadline = performance.now() + input.waitSeconds * 1000;
  const wanted = input.endpoints === null ? undefined : new Set(input.endpoints);
  let notified = false;
  let wake: (() => void) | undefined;
  const onNotify = () => {
    notified = true;
    wake?.();
  };
  // Subscribed before the first look, so a job queued between that look and the wait is not missed.
  const unsubscribe = ctx.listener
    ? [
        ctx.listener.subscribe(JOB_QUEUED_CHANNEL, (payload) => {
          // `<organization_id> <endpoint>` (migration 0006): only a job this claim could take wakes it.
          const [organizationId, endpoint] = payload.split(' ');
          const mine = input.organizationIds === null || input.organizationIds.includes(organizationId);
          if (mine && (!wanted || wanted.has(endpoint))) onNotify();
        }),
        // Notifications sent while the listener reconnected are lost: look again.
        ctx.listener.onReconnect(onNotify),
      ]
    : [];
  try {
    for (;;) {
      notified = false;
      const rows = await claimOnce(ctx, input);
      if (rows.length > 0 || signal?.aborted) return deliver(ctx, input, rows, signal);
      const remaining = deadline - performance.now();
      if (remaining <= 0) return [];
      let sleepMs = remaining;
      const now = ctx.clock.now();
      const nextDue = await findNextRunAfter(ctx.db, { ...input, now });
      if (nextDue) sleepMs = Math.min(sleepMs, Math.max(1, nextDue.getTime() - now.getTime()));
      if (!ctx.listener) sleepMs = Math.min(sleepMs, FALLBACK_POLL_MS);
      if (!notified) {
        await pause(sleepMs, signal, (w) => {
          wake = w;
        });
      }
      wake = undefined;
      if (signal?.aborted) return [];
    }
  } finally {
    for (const off of unsubscribe) off();
  }
}

/**
 * Answers the claimed jobs. Jobs nobody will receive (the caller hung up, or their request
 * could not be read) are released at once rather than left to run out their lease.
 */
async function deliver(
  ctx: JobContext,
  input: ClaimRequest,
  rows: readonly ClaimedJobRow[],
  signal: AbortSignal | undefined,
): Promise<ClaimedJob[]> {
  const handBack = () =>
    Promise.allSettled(
      rows.map((row) =>
        release(ctx, { organizationId: row.organization_id, jobId: row.id, leaseToken: row.lease_token }),
      ),
    );
  let claimed: ClaimedJob[];
  try {
    claimed = signal?.aborted ? [] : await present(ctx, rows, input);
  } catch (error) {
    await handBack();
    throw error;
  }
  if (signal?.aborted) {
    await handBack();
    return [];
  }
  return claimed;
}
