import { WorkerShutdownError } from './abort-reasons.js';
import type { HeldJob, HeldJobs } from './held-jobs.js';
import type { WorkerLogger } from './logger.js';
import type { ReportBatcher } from './report-batcher.js';
import type { ClaimedJob } from './types.js';

export interface Shutdown {
  /** Releases a job claimed while stopping rather than starting it; run() waits for the release. */
  handBack(claimed: ClaimedJob): void;
  /**
   * After the claim loop has ended, lets running handlers finish and report within the grace
   * period, then aborts and releases the jobs still running, and sends every report still
   * pending before it resolves.
   */
  run(claimLoopDone: Promise<void> | undefined, graceSeconds: number): Promise<void>;
  /** Ends the grace period now, or makes it zero if it has not begun. */
  cutGrace(): void;
}

export function createShutdown(deps: {
  reports: ReportBatcher;
  held: HeldJobs;
  logger: WorkerLogger;
}): Shutdown {
  const { reports, held, logger } = deps;
  const pendingReleases = new Set<Promise<void>>();
  let graceCut = false;
  let endGrace: (() => void) | undefined;

  async function release(jobId: string, leaseToken: string) {
    try {
      await reports.release(jobId, { lease_token: leaseToken });
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
    // A lost lease belongs to whoever took the job back: there is nothing left to release.
    if (!entry.leaseLost) await release(entry.job.id, entry.leaseToken);
  }

  async function waitForGrace(graceSeconds: number) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceOver = new Promise<void>((resolve) => {
      endGrace = resolve;
      timer = setTimeout(resolve, graceCut ? 0 : graceSeconds * 1000);
    });
    await Promise.race([Promise.all(held.list().map((entry) => entry.done)), graceOver]);
    clearTimeout(timer);
  }

  return {
    handBack(claimed) {
      const pending = release(claimed.job.id, claimed.lease_token);
      pendingReleases.add(pending);
      void pending.finally(() => pendingReleases.delete(pending));
    },
    async run(claimLoopDone, graceSeconds) {
      await claimLoopDone;
      // Reports waiting for their batch, and the ones to come, go out now rather than after flushMs.
      reports.hurry();
      if (held.size > 0) {
        await waitForGrace(graceSeconds);
        // A job already reporting keeps its outcome: only handlers still running are cut off.
        await Promise.all(
          held.list().map((entry) => (entry.phase === 'running' ? releaseRunning(entry) : entry.done)),
        );
      }
      await Promise.all(pendingReleases);
      // Nothing the worker sent may be left behind in the batcher, its retries included.
      await reports.drain();
    },
    cutGrace() {
      graceCut = true;
      endGrace?.();
    },
  };
}

/**
 * The first signal stops the worker gracefully; another one while it is stopping cuts the grace
 * period short, so an impatient operator need not kill the process and skip the releases.
 */
export function stopOnSignals(
  signals: readonly NodeJS.Signals[],
  logger: WorkerLogger,
  worker: {
    activeJobs(): number;
    isStopping(): boolean;
    stop(options?: { graceSeconds?: number }): Promise<void>;
  },
): { listen(): void; unlisten(): void } {
  const onSignal = (signal: NodeJS.Signals) => {
    const stopping = worker.isStopping();
    logger.info(
      { signal, active_jobs: worker.activeJobs() },
      stopping ? 'releasing running jobs now' : 'stopping',
    );
    void worker.stop(stopping ? { graceSeconds: 0 } : undefined);
  };
  return {
    listen() {
      for (const signal of signals) process.on(signal, onSignal);
    },
    unlisten() {
      for (const signal of signals) process.off(signal, onSignal);
    },
  };
}
