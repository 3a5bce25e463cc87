import { AppError } from '../domain/errors.js';
import { randomId } from '../domain/ids.js';
import type { JobView, Problem } from '../domain/job-shape.js';
import type { LeaseRef } from '../domain/lease.js';
import type { JobContext } from '../jobs/job-context.js';
import { lightweightView } from '../jobs/job-view.js';
import { mapWithConcurrency } from '../lib/concurrency.js';
import { type Completion, completeLeases } from '../lifecycle/completion-repository.js';
import { type AttemptEnd, endAttempts } from '../lifecycle/lease-endings.js';
import { lockLeasedJobs, renewLeases } from '../lifecycle/lease-repository.js';
import type { OffloadResult } from '../storage/artifact-offloader.js';
import { type OffloadedWriteOptions, offloadForWrite, settleOffloaded } from '../storage/offloaded-write.js';
import { explainUnmatched, type Unmatched } from './lease-rejections.js';
import { findLeaseStates } from './worker-repository.js';

/** What a lease holder reports, by itself or in a batch of them. */
export type Report =
  | { type: 'heartbeat'; lease: LeaseRef; leaseSeconds: number }
  | {
      type: 'complete';
      lease: LeaseRef;
      response: { status_code: number; body: unknown };
      warnings?: Problem[];
    }
  | { type: 'fail'; lease: LeaseRef; error: Problem; retryable: boolean }
  | { type: 'cancelled'; lease: LeaseRef }
  | { type: 'release'; lease: LeaseRef };

export interface HeartbeatAnswer {
  cancel_requested: boolean;
  lease_expires_at: number;
}

export type ReportResult =
  | { ok: true; job: JobView; heartbeat?: undefined }
  | { ok: true; heartbeat: HeartbeatAnswer; job?: undefined }
  | { ok: false; error: AppError };

type Indexed<T> = { index: number; report: T };
type Of<K extends Report['type']> = Extract<Report, { type: K }>;

const OUTCOME_OF = {
  complete: 'succeeded',
  fail: 'failed',
  cancelled: 'cancelled',
  release: 'released',
} as const;

// Responses offloaded at once in a batch; each offload writes its own artifacts OFFLOAD_CONCURRENCY at a time.
const OFFLOADS_AT_ONCE = 4;

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/**
 * Applies reports, each kind in one statement (or one transaction) whatever the number of them:
 * the heartbeats, the completions, and the ends without a result (fail, cancelled, release). The
 * single routes are batches of one, so a report means the same thing alone or among others:
 * fencing by lease token, a resend of the outcome the lease already ended with answering the job,
 * cancellation rules, backoff, large responses offloaded. Answers in the reports' order; a report
 * that cannot apply (not the caller's job, a lease lost, storage down for its response) fails
 * alone. A job named twice in one batch is refused after its first report.
 */
export async function applyReports(ctx: JobContext, reports: readonly Report[]): Promise<ReportResult[]> {
  const results: ReportResult[] = new Array(reports.length);
  const seen = new Set<string>();
  const groups = { heartbeat: [], complete: [], ends: [] } as {
    heartbeat: Indexed<Of<'heartbeat'>>[];
    complete: Indexed<Of<'complete'>>[];
    ends: Indexed<Of<'fail' | 'cancelled' | 'release'>>[];
  };
  reports.forEach((report, index) => {
    if (seen.has(report.lease.jobId)) {
      const message = `Job '${report.lease.jobId}' is named twice in this batch; send one report per job.`;
      results[index] = {
        ok: false,
        error: new AppError('invalid_request', message, { job_id: report.lease.jobId }),
      };
      return;
    }
    seen.add(report.lease.jobId);
    if (report.type === 'heartbeat') groups.heartbeat.push({ index, report });
    else if (report.type === 'complete') groups.complete.push({ index, report });
    else groups.ends.push({ index, report });
  });
  const unmatched: (Unmatched & { index: number })[] = [];
  await Promise.all([
    applyHeartbeats(ctx, groups.heartbeat, results, unmatched),
    applyCompletions(ctx, groups.complete, results, unmatched),
    applyEnds(ctx, groups.ends, results, unmatched),
  ]);
  const explained = await explainUnmatched(ctx, unmatched);
  unmatched.forEach((item, i) => {
    results[item.index] = explained[i];
  });
  return results;
}

async function applyHeartbeats(
  ctx: JobContext,
  items: Indexed<Of<'heartbeat'>>[],
  results: ReportResult[],
  unmatched: (Unmatched & { index: number })[],
) {
  if (items.length === 0) return;
  const renewed = await renewLeases(
    ctx.db,
    items.map(({ report }) => ({ lease: report.lease, leaseSeconds: report.leaseSeconds })),
    ctx.clock.now(),
  );
  const byId = new Map(renewed.map((row) => [row.id, row]));
  for (const { index, report } of items) {
    const row = byId.get(report.lease.jobId);
    if (!row) unmatched.push({ index, lease: report.lease });
    else
      results[index] = {
        ok: true,
        heartbeat: { cancel_requested: row.cancelled, lease_expires_at: seconds(row.lease_expires_at) },
      };
  }
}

/**
 * Offloads what each response needs to (under a folder of its own report, so that a stale or
 * resent report never touches the objects of the one that completed the job), then completes all
 * of them in one statement, then deletes the objects of those that did not complete.
 */
async function applyCompletions(
  ctx: JobContext,
  items: Indexed<Of<'complete'>>[],
  results: ReportResult[],
  unmatched: (Unmatched & { index: number })[],
) {
  if (items.length === 0) return;
  // A fleet key names no organization; the objects of a job still go under its organization's.
  const fleetJobs = items
    .filter((i) => i.report.lease.organizationId === null)
    .map((i) => i.report.lease.jobId);
  const organizationOf = new Map(
    (await findLeaseStates(ctx.db, fleetJobs)).map((row) => [row.id, row.organization_id]),
  );
  const optionsOf = (lease: LeaseRef): OffloadedWriteOptions => ({
    jobId: lease.jobId,
    keyPrefix: () =>
      `${lease.organizationId ?? organizationOf.get(lease.jobId) ?? 'unknown'}/${lease.jobId}/${lease.leaseToken}/${randomId(8)}`,
    role: 'response',
    settings: ctx.config,
    unavailable: {
      message: 'Object storage could not store the response; the lease is unchanged, try again.',
      details: { job_id: lease.jobId },
    },
  });
  const offloads = await mapWithConcurrency(items, OFFLOADS_AT_ONCE, async ({ index, report }) => {
    const options = optionsOf(report.lease);
    try {
      return { index, report, options, offloaded: await offloadForWrite(ctx, report.response, options) };
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      results[index] = { ok: false, error };
      return undefined;
    }
  });
  const ready = offloads.filter((o) => o !== undefined) as {
    index: number;
    report: Of<'complete'>;
    options: OffloadedWriteOptions;
    offloaded: OffloadResult;
  }[];
  if (ready.length === 0) return;
  const completions = ready.map(
    ({ report, offloaded }): Completion => ({
      lease: report.lease,
      response: offloaded.stored,
      warnings: report.warnings ?? null,
      artifacts: offloaded.artifacts,
    }),
  );
  let outcomes: Awaited<ReturnType<typeof completeLeases>>;
  try {
    outcomes = await completeLeases(ctx.db, completions, ctx.clock.now());
  } catch (error) {
    await Promise.all(ready.map((r) => settleOffloaded(ctx, r.offloaded, r.options, { error })));
    throw error;
  }
  await Promise.all(
    ready.map(async ({ index, report, options, offloaded }, i) => {
      const outcome = outcomes[i];
      await settleOffloaded(ctx, offloaded, options, { written: outcome.completed });
      if (outcome.completed) results[index] = { ok: true, job: lightweightView(outcome.row) };
      else if (outcome.reason === 'lease_not_held')
        unmatched.push({ index, lease: report.lease, outcome: 'succeeded' });
      else
        results[index] = {
          ok: false,
          error: new AppError(
            'service_unavailable',
            'Storing the response took too long; the lease is unchanged, try again.',
            { job_id: report.lease.jobId },
          ),
        };
    }),
  );
}

/** Fail, cancelled and release: the leases locked, then ended, in one transaction. */
async function applyEnds(
  ctx: JobContext,
  items: Indexed<Of<'fail' | 'cancelled' | 'release'>>[],
  results: ReportResult[],
  unmatched: (Unmatched & { index: number })[],
) {
  if (items.length === 0) return;
  const now = ctx.clock.now();
  const ended = await ctx.db.transaction().execute(async (trx) => {
    const locked = new Map(
      (
        await lockLeasedJobs(
          trx,
          items.map((i) => i.report.lease),
        )
      ).map((j) => [j.id, j]),
    );
    const decided: { job: NonNullable<ReturnType<typeof locked.get>>; attemptEnd: AttemptEnd }[] = [];
    for (const { index, report } of items) {
      const job = locked.get(report.lease.jobId);
      if (!job) {
        unmatched.push({ index, lease: report.lease, outcome: OUTCOME_OF[report.type] });
      } else if (report.type === 'cancelled' && !job.cancelled) {
        const message = `Job '${report.lease.jobId}' has no cancellation request; report it with complete, fail or release.`;
        const details = { job_id: report.lease.jobId, status: 'in_progress' };
        results[index] = { ok: false, error: new AppError('conflict', message, details) };
      } else {
        const attemptEnd: AttemptEnd =
          report.type === 'fail'
            ? { kind: 'failed', outcome: 'failed', retryable: report.retryable, error: report.error }
            : { kind: report.type === 'release' ? 'released' : 'cancelled' };
        decided.push({ job, attemptEnd });
      }
    }
    return endAttempts(trx, decided, { now, settings: ctx.config, random: ctx.random });
  });
  const byId = new Map(ended.map((row) => [row.id, row]));
  for (const { index, report } of items) {
    const row = byId.get(report.lease.jobId);
    if (row) results[index] = { ok: true, job: lightweightView(row) };
  }
}
