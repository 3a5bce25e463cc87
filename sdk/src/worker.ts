import { runClaimLoop } from './claim-loop.js';
import { HeldJobs } from './held-jobs.js';
import { ReportBatcher } from './report-batcher.js';
import { startJob } from './run-job.js';
import { WorkerApi } from './worker-api.js';
import { resolveWorkerOptions, type WorkerOptions } from './worker-options.js';
import { createShutdown, stopOnSignals } from './worker-shutdown.js';

export type { JobContext, JobHandler } from './job-handler.js';
export type { WorkerOptions } from './worker-options.js';

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

/** A worker process: claims jobs for its endpoints, runs their handlers, heartbeats and reports. */
export function createWorker(options: WorkerOptions): Worker {
  const settings = resolveWorkerOptions(options);
  const { workerId, logger } = settings;
  const api = new WorkerApi(options);
  const held = new HeldJobs();
  // Every job reports through it: each held job has at most one report pending at a time, so once
  // every held job has one, the batch need not wait for more.
  const reports = new ReportBatcher(api, {
    batchSize: settings.reportBatchSize,
    flushMs: settings.reportFlushMs,
    expected: () => held.size,
  });
  const stopController = new AbortController();
  const shutdown = createShutdown({ reports, held, logger });
  let claiming: Promise<void> | undefined;
  let started: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;

  const signals = stopOnSignals(settings.signals, logger, {
    activeJobs: () => held.size,
    isStopping: () => stopping !== undefined,
    stop: (stopOptions) => worker.stop(stopOptions),
  });

  const worker: Worker = {
    workerId,
    get activeJobs() {
      return held.size;
    },
    start() {
      if (started) return started;
      if (stopping) return stopping;
      signals.listen();
      logger.info(
        { worker_id: workerId, endpoints: [...settings.handlers.keys()], concurrency: settings.concurrency },
        'worker started',
      );
      claiming = runClaimLoop({
        settings,
        api,
        held,
        stopSignal: stopController.signal,
        startJob: (claimed) => startJob(claimed, { settings, reports, held }),
        handBack: shutdown.handBack,
      }).catch((error) => {
        logger.error({ err: error }, 'the claim loop stopped unexpectedly');
      });
      // Whether stop() ended the loop or it broke, start() resolves once the shutdown is over.
      started = claiming.then(() => worker.stop());
      return started;
    },
    stop(stopOptions = {}) {
      if (stopping) {
        if (stopOptions.graceSeconds === 0) shutdown.cutGrace();
        return stopping;
      }
      stopController.abort();
      stopping = shutdown
        .run(claiming, stopOptions.graceSeconds ?? settings.shutdownGraceSeconds)
        .finally(() => {
          signals.unlisten();
          logger.info({ worker_id: workerId }, 'worker stopped');
        });
      return stopping;
    },
  };
  return worker;
}
