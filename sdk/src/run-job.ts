import { JobCancelledError, LeaseLostError } from './abort-reasons.js';
import { ConflictError, NotFoundError } from './errors.js';
import { startHeartbeats } from './heartbeats.js';
import type { HeldJob, HeldJobs } from './held-jobs.js';
import type { JobContext } from './job-handler.js';
import { LazyAbortController } from './lazy-abort.js';
import { type HandlerOutcome, reportOutcome } from './report-outcome.js';
import type { ClaimedJob } from './types.js';
import type { LeaseReports } from './worker-api.js';
import type { WorkerSettings } from './worker-options.js';

export interface JobRunnerDeps {
  settings: WorkerSettings;
  /** Where heartbeats and outcomes go: the worker's batcher. */
  reports: LeaseReports;
  held: HeldJobs;
}

/**
 * Takes a claimed job into a slot: keeps its lease alive, runs its handler and reports the
 * outcome. The slot frees up once that is done.
 */
export function startJob(claimed: ClaimedJob, deps: JobRunnerDeps): void {
  const { settings, reports, held } = deps;
  const jobId = claimed.job.id;
  const entry: HeldJob = {
    job: claimed.job,
    leaseToken: claimed.lease_token,
    controller: new LazyAbortController(),
    phase: 'running',
    cancelRequested: false,
    leaseLost: false,
    released: false,
    done: Promise.resolve(),
  };
  entry.heartbeats = startHeartbeats(
    reports,
    {
      jobId,
      leaseToken: claimed.lease_token,
      leaseSeconds: settings.leaseSeconds,
      intervalMs: settings.heartbeatMs,
    },
    {
      onCancelRequested() {
        entry.cancelRequested = true;
        entry.controller.abort(new JobCancelledError(jobId));
      },
      onLeaseLost(error) {
        entry.leaseLost = true;
        entry.controller.abort(new LeaseLostError(jobId, { cause: error }));
      },
    },
    settings.logger,
  );
  held.add(entry);
  entry.done = runJob(entry, deps).finally(() => held.remove(jobId));
}

async function runJob(entry: HeldJob, { settings, reports }: JobRunnerDeps): Promise<void> {
  const { job } = entry;
  const { logger } = settings;
  const started = Date.now();
  const outcome = await callHandler(entry, settings);
  if (entry.released) return;
  entry.phase = 'reporting';
  await entry.heartbeats?.stop();
  if (entry.leaseLost) {
    logger.warn(
      { job_id: job.id, endpoint: job.endpoint },
      'lease lost: the outcome of this job was dropped',
    );
    return;
  }
  try {
    const line = await reportOutcome(reports, entry, outcome);
    logger.info({ ...line, duration_ms: Date.now() - started }, 'job finished');
  } catch (error) {
    // A 409/404: the job is no longer ours (its lease ran out). That happens; it is no fault here.
    const level = error instanceof ConflictError || error instanceof NotFoundError ? 'warn' : 'error';
    logger[level](
      { job_id: job.id, endpoint: job.endpoint, err: error },
      'could not report the outcome; the job is retried once its lease runs out',
    );
  }
}

/** Whatever the handler does, returns or throws, becomes an outcome to report. */
async function callHandler(entry: HeldJob, settings: WorkerSettings): Promise<HandlerOutcome> {
  const { job } = entry;
  try {
    const handler = settings.handlers.get(job.endpoint);
    if (!handler) {
      // Another attempt on this worker would fail the same way.
      throw Object.assign(new Error(`This worker has no handler for endpoint '${job.endpoint}'.`), {
        code: 'unsupported_endpoint',
        retryable: false,
      });
    }
    const ctx: JobContext = {
      get signal() {
        return entry.controller.signal;
      },
      workerId: settings.workerId,
      leaseToken: entry.leaseToken,
      attempt: job.attempt_count,
      logger: settings.logger,
    };
    return { ok: true, value: await handler(job, ctx) };
  } catch (error) {
    return { ok: false, error };
  }
}
