import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { JobCancelledError, LeaseLostError, WorkerShutdownError } from './abort-reasons.js';
import { backoffDelayMs } from './backoff.js';
import { ConflictError, JobsApiError, NotFoundError } from './errors.js';
import { describeHandlerError } from './handler-errors.js';
import { toJobResponse } from './handler-result.js';
import { type Heartbeats, startHeartbeats } from './heartbeats.js';
import type { FetchLike } from './http-client.js';
import { createConsoleLogger, type WorkerLogger } from './logger.js';
import { pause } from './sleep.js';
import type { ClaimedJob, Job } from './types.js';
import { WorkerApi } from './worker-api.js';

export interface JobContext {
  /**
   * Aborts when the handler should stop: the client cancelled the job (reason JobCancelledError),
   * the lease was lost (LeaseLostError), or the worker shut down past its grace period
   * (WorkerShutdownError). Pass it to fetch and other cancellable calls.
   */
  signal: AbortSignal;
  workerId: string;
  leaseToken: string;
  /** 1 for the first execution of the job. */
  attempt: number;
  logger: WorkerLogger;
}

/**
 * Runs one job. What it returns becomes the response (see toJobResponse for the rule); what it
 * throws fails the attempt, retryable unless the error says `retryable: false` (NonRetryableError).
 */
export type JobHandler = (job: Job, ctx: JobContext) => unknown;

export interface WorkerOptions {
  /** An API key with the worker scope. */
  apiKey: string;
  baseUrl: string;
  /** Recorded on each job and attempt (default host:pid:random). */
  workerId?: string;
  /** One handler per endpoint ('/v1' prefix optional); only these endpoints are claimed. */
  endpoints: Record<string, JobHandler>;
  /** Jobs run at once (default 4). */
  concurrency?: number;
  /** Most jobs claimed per request (default: concurrency); never more than the free slots. */
  batchSize?: number;
  /** Lease asked for on claim and renewed by every heartbeat (default 60). */
  leaseSeconds?: number;
  /** Time between heartbeats of a running job (default leaseSeconds / 3). */
  heartbeatIntervalSeconds?: number;
  /** How long a claim waits on the server for a job when none is queued, 0..30 (default 20). */
  waitSeconds?: number;
  /** On stop, how long running handlers may still take before their jobs are released (default 30). */
  shutdownGraceSeconds?: number;
  /** Stop gracefully on SIGTERM and SIGINT; a second signal releases running jobs at once (default true). */
  handleSignals?: boolean;
  /** Pause after a failed claim, doubled on each failure in a row up to maxSeconds (default 1 .. 30). */
  retryBackoff?: { initialSeconds?: number; maxSeconds?: number };
  /** Default: warnings and errors on stderr. */
  logger?: WorkerLogger;
  /** Limit for one HTTP request, in ms (default 30 000); claims get their wait on top. */
  timeoutMs?: number;
  fetch?: FetchLike;
}

export interface Worker {
  readonly workerId: string;
  /** Jobs currently held (running or being reported). */
  readonly activeJobs: number;
  /** Claims and runs jobs until stopped; resolves once stopped. Calling it again returns the same promise. */
  start(): Promise<void>;
  /**
   * Stops claiming, lets running handlers finish within the grace period (default: the worker's
   * shutdownGraceSeconds), releases the jobs still running after it, then resolves. Calling it
   * again while stopping with graceSeconds: 0 cuts the grace period short.
   */
  stop(options?: { graceSeconds?: number }): Promise<void>;
}

/** The stored form of an endpoint, as the server normalises it. */
function normaliseEndpoint(endpoint: string): string {
  if (endpoint.startsWith('/v1/')) return endpoint;
  return `/v1${endpoint.startsWith('/') ? '' : '/'}${endpoint}`;
}

interface HeldJob {
  job: Job;
  leaseToken: string;
  controller: AbortController;
  /** running: the handler has not settled; reporting: its outcome is being sent. */
  phase: 'running' | 'reporting';
  cancelRequested: boolean;
  leaseLost: boolean;
  /** Handed back at shutdown: the handler's outcome is dropped. */
  released: boolean;
  heartbeats?: Heartbeats;
  done: Promise<void>;
}

/** A worker process: claims jobs for its endpoints, runs their handlers, heartbeats and reports. */
export function createWorker(options: WorkerOptions): Worker {
  const handlers = new Map<string, JobHandler>();
  for (const [endpoint, handler] of Object.entries(options.endpoints)) {
    handlers.set(normaliseEndpoint(endpoint), handler);
  }
  if (handlers.size === 0) throw new TypeError('endpoints must name at least one handler.');
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new TypeError('concurrency must be an integer >= 1.');
  const batchSize = Math.min(options.batchSize ?? concurrency, 100);
  const claimThreshold = Math.max(1, Math.floor(Math.min(batchSize, concurrency) / 2));
  const leaseSeconds = options.leaseSeconds ?? 60;
  const heartbeatMs = (options.heartbeatIntervalSeconds ?? leaseSeconds / 3) * 1000;
  const waitSeconds = Math.min(Math.max(Math.floor(options.waitSeconds ?? 20), 0), 30);
  const defaultGraceSeconds = options.shutdownGraceSeconds ?? 30;
  const backoffInitialMs = (options.retryBackoff?.initialSeconds ?? 1) * 1000;
  const backoffMaxMs = (options.retryBackoff?.maxSeconds ?? 30) * 1000;
  const logger = options.logger ?? createConsoleLogger({ level: 'warn' });
  const workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const api = new WorkerApi(options);

  const held = new Map<string, HeldJob>();
  const pendingReleases = new Set<Promise<void>>();
  const stopController = new AbortController();
  let claimController: AbortController | undefined;
  let slotWaiters: (() => void)[] = [];
  let running: Promise<void> | undefined;
  let started: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  let graceCut = false;
  let endGrace: (() => void) | undefined;

  const wakeSlotWaiters = () => {
    const waiters = slotWaiters;
    slotWaiters = [];
    for (const wake of waiters) wake();
  };
  const slotFreed = () => new Promise<void>((resolve) => slotWaiters.push(resolve));

  async function report(
    entry: HeldJob,
    outcome: { ok: true; value: unknown } | { ok: false; error: unknown },
  ) {
    const { job, leaseToken } = entry;
    const fields = { job_id: job.id, endpoint: job.endpoint, attempt: job.attempt_count };
    if (outcome.ok) {
      const { response, warnings } = toJobResponse(outcome.value);
      try {
        await api.complete(job.id, { lease_token: leaseToken, response, warnings });
        return { ...fields, outcome: 'completed', status_code: response.status_code };
      } catch (error) {
        // The server refused the result itself (invalid status code, too large): retrying the
        // same handler would most likely produce the same, so the job fails now.
        if (!(error instanceof JobsApiError) || error.status >= 500 || [404, 409].includes(error.status)) {
          throw error;
        }
        await api.fail(job.id, {
          lease_token: leaseToken,
          error: {
            code: 'invalid_handler_result',
            message: `The server refused the handler's result: ${error.message}`,
            details: { status: error.status, code: error.code },
          },
          retryable: false,
        });
        return { ...fields, outcome: 'failed', error_code: 'invalid_handler_result' };
      }
    }
    if (entry.cancelRequested) {
      await api.cancelled(job.id, { lease_token: leaseToken });
      return { ...fields, outcome: 'cancelled' };
    }
    const failure = describeHandlerError(outcome.error);
    const after = await api.fail(job.id, { lease_token: leaseToken, ...failure });
    return {
      ...fields,
      outcome: after.status === 'queued' ? 'failed, will retry' : after.status,
      error_code: failure.error.code,
    };
  }

  async function run(entry: HeldJob) {
    const { job } = entry;
    const started = Date.now();
    let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
    try {
      const handler = handlers.get(job.endpoint);
      if (!handler) {
        throw Object.assign(new Error(`This worker has no handler for endpoint '${job.endpoint}'.`), {
          code: 'unsupported_endpoint',
          retryable: false,
        });
      }
      const ctx: JobContext = {
        signal: entry.controller.signal,
        workerId,
        leaseToken: entry.leaseToken,
        attempt: job.attempt_count,
        logger,
      };
      outcome = { ok: true, value: await handler(job, ctx) };
    } catch (error) {
      outcome = { ok: false, error };
    }
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
      const line = await report(entry, outcome);
      logger.info({ ...line, duration_ms: Date.now() - started }, 'job finished');
    } catch (error) {
      const level = error instanceof ConflictError || error instanceof NotFoundError ? 'warn' : 'error';
      logger[level](
        { job_id: job.id, endpoint: job.endpoint, err: error },
        'could not report the outcome; the job is retried once its lease runs out',
      );
    }
  }

  function hold(claimed: ClaimedJob) {
    const entry: HeldJob = {
      job: claimed.job,
      leaseToken: claimed.lease_token,
      controller: new AbortController(),
      phase: 'running',
      cancelRequested: false,
      leaseLost: false,
      released: false,
      done: Promise.resolve(),
    };
    entry.heartbeats = startHeartbeats(
      api,
      { jobId: claimed.job.id, leaseToken: claimed.lease_token, leaseSeconds, intervalMs: heartbeatMs },
      {
        onCancelRequested() {
          entry.cancelRequested = true;
          entry.controller.abort(new JobCancelledError(claimed.job.id));
        },
        onLeaseLost(error) {
          entry.leaseLost = true;
          entry.controller.abort(new LeaseLostError(claimed.job.id, { cause: error }));
        },
      },
      logger,
    );
    held.set(claimed.job.id, entry);
    entry.done = run(entry).finally(() => {
      held.delete(claimed.job.id);
      wakeSlotWaiters();
    });
  }

  async function release(jobId: string, leaseToken: string) {
    try {
      await api.release(jobId, { lease_token: leaseToken });
      logger.info({ job_id: jobId }, 'job released');
    } catch (error) {
      logger.warn(
        { job_id: jobId, err: error },
        'could not release the job; it is retried once its lease runs out',
      );
    }
  }

  async function releaseRunning(entry: HeldJob) {
    entry.released = true;
    entry.controller.abort(new WorkerShutdownError(entry.job.id));
    await entry.heartbeats?.stop();
    if (!entry.leaseLost) await release(entry.job.id, entry.leaseToken);
  }

  async function claimLoop() {
    let failures = 0;
    while (!stopController.signal.aborted) {
      const free = concurrency - held.size;
      // Claim in batches: while jobs run, wait until at least half a batch of slots is free,
      // instead of one claim request per finished job.
      if (free <= 0 || (held.size > 0 && free < claimThreshold)) {
        await slotFreed();
        continue;
      }
      claimController = new AbortController();
      let claimed: ClaimedJob[];
      try {
        const answer = await api.claim(
          {
            worker_id: workerId,
            limit: Math.min(free, batchSize),
            endpoints: [...handlers.keys()],
            lease_seconds: leaseSeconds,
            wait_seconds: waitSeconds,
          },
          { signal: claimController.signal },
        );
        claimed = answer.data;
        failures = 0;
      } catch (error) {
        if (stopController.signal.aborted) break;
        const delayMs = backoffDelayMs(failures++, { initialMs: backoffInitialMs, maxMs: backoffMaxMs });
        // A client error will not go away by itself (wrong key, unknown endpoint): say so loudly.
        const level =
          error instanceof JobsApiError && error.status < 500 && error.status !== 429 ? 'error' : 'warn';
        logger[level]({ err: error, retry_in_ms: delayMs }, 'claim failed');
        await pause(delayMs, stopController.signal);
        continue;
      }
      for (const job of claimed) {
        if (stopController.signal.aborted) {
          // Claimed while stopping: hand it straight back rather than start it.
          const pending = release(job.job.id, job.lease_token);
          pendingReleases.add(pending);
          void pending.finally(() => pendingReleases.delete(pending));
        } else {
          logger.debug?.({ job_id: job.job.id, endpoint: job.job.endpoint }, 'job claimed');
          hold(job);
        }
      }
    }
  }

  async function shutdown(graceSeconds: number) {
    await running;
    const entries = () => [...held.values()];
    if (held.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const graceOver = new Promise<void>((resolve) => {
        endGrace = resolve;
        timer = setTimeout(resolve, graceCut ? 0 : graceSeconds * 1000);
      });
      await Promise.race([Promise.all(entries().map((entry) => entry.done)), graceOver]);
      clearTimeout(timer);
      await Promise.all(
        entries().map((entry) => (entry.phase === 'running' ? releaseRunning(entry) : entry.done)),
      );
    }
    await Promise.all(pendingReleases);
  }

  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal, active_jobs: held.size }, stopping ? 'releasing running jobs now' : 'stopping');
    void worker.stop(stopping ? { graceSeconds: 0 } : undefined);
  };
  const signals: NodeJS.Signals[] = options.handleSignals === false ? [] : ['SIGTERM', 'SIGINT'];

  const worker: Worker = {
    workerId,
    get activeJobs() {
      return held.size;
    },
    start() {
      if (started) return started;
      if (stopping) return stopping;
      for (const signal of signals) process.on(signal, onSignal);
      logger.info({ worker_id: workerId, endpoints: [...handlers.keys()], concurrency }, 'worker started');
      running = claimLoop().catch((error) => {
        logger.error({ err: error }, 'the claim loop stopped unexpectedly');
      });
      started = running.then(() => worker.stop());
      return started;
    },
    stop(stopOptions = {}) {
      if (stopping) {
        if (stopOptions.graceSeconds === 0) {
          graceCut = true;
          endGrace?.();
        }
        return stopping;
      }
      stopController.abort();
      claimController?.abort();
      wakeSlotWaiters();
      stopping = shutdown(stopOptions.graceSeconds ?? defaultGraceSeconds).finally(() => {
        for (const signal of signals) process.off(signal, onSignal);
        logger.info({ worker_id: workerId }, 'worker stopped');
      });
      return stopping;
    },
  };
  return worker;
}
