import { backoffDelayMs } from './backoff.js';
import { JobsApiError } from './errors.js';
import type { HeldJobs } from './held-jobs.js';
import { pause } from './sleep.js';
import type { ClaimedJob } from './types.js';
import type { WorkerApi } from './worker-api.js';
import type { WorkerSettings } from './worker-options.js';

export interface ClaimLoopDeps {
  settings: WorkerSettings;
  api: WorkerApi;
  held: HeldJobs;
  /** Ends the loop; a claim in flight is abandoned and the server hands back what it took. */
  stopSignal: AbortSignal;
  /** Runs a claimed job in a free slot. */
  startJob(claimed: ClaimedJob): void;
  /** Gives back a job whose claim came back after the stop. */
  handBack(claimed: ClaimedJob): void;
}

/**
 * Claims jobs into free slots until stopped, asking for as many as are free (at most batchSize).
 * One claim is in flight at a time, so slots that free up meanwhile are asked for together by
 * the next one rather than one tiny claim each; while claims come back full (the queue has more),
 * another claim may go out for each further batchSize free slots. A failed claim is retried with
 * backoff, never thrown. Resolves once stopped and every claim in flight has settled.
 */
export async function runClaimLoop(deps: ClaimLoopDeps): Promise<void> {
  const { settings, held, stopSignal } = deps;
  stopSignal.addEventListener('abort', () => held.wakeSlotWaiters(), { once: true });
  const inFlight = new Set<Promise<void>>();
  /** Slots asked for by the claims in flight. */
  let asked = 0;
  let queueHasMore = false;
  let failures = 0;
  let failure: { error: unknown } | undefined;

  const claimInto = (limit: number) => {
    asked += limit;
    const settled = claim(deps, limit).then(
      (claimed) => {
        failures = 0;
        queueHasMore = claimed.length === limit;
        for (const job of claimed) {
          if (stopSignal.aborted) {
            deps.handBack(job);
          } else {
            settings.logger.debug?.({ job_id: job.job.id, endpoint: job.job.endpoint }, 'job claimed');
            deps.startJob(job);
          }
        }
      },
      (error: unknown) => {
        queueHasMore = false;
        if (!stopSignal.aborted) failure = { error };
      },
    );
    const done = settled.finally(() => {
      asked -= limit;
      inFlight.delete(done);
      held.wakeSlotWaiters();
    });
    inFlight.add(done);
  };

  while (!stopSignal.aborted) {
    if (failure) {
      const { error } = failure;
      failure = undefined;
      await backOff(deps, error, failures++);
      continue;
    }
    const free = settings.concurrency - held.size - asked;
    const another = inFlight.size === 0 || (queueHasMore && free >= settings.batchSize);
    if (free <= 0 || !another) {
      await held.slotFreed();
      continue;
    }
    claimInto(Math.min(free, settings.batchSize));
  }
  await Promise.all(inFlight);
}

async function claim({ settings, api, stopSignal }: ClaimLoopDeps, limit: number): Promise<ClaimedJob[]> {
  const answer = await api.claim(
    {
      worker_id: settings.workerId,
      limit,
      endpoints: [...settings.handlers.keys()],
      lease_seconds: settings.leaseSeconds,
      wait_seconds: settings.waitSeconds,
    },
    { signal: stopSignal },
  );
  return answer.data;
}

/** Logs a failed claim and pauses before the next one; a stop ends the pause early. */
async function backOff({ settings, stopSignal }: ClaimLoopDeps, error: unknown, failures: number) {
  const delayMs = backoffDelayMs(failures, settings.claimBackoff);
  // A client error will not go away by itself (wrong key, unknown endpoint): say so loudly.
  const level =
    error instanceof JobsApiError && error.status < 500 && error.status !== 429 ? 'error' : 'warn';
  settings.logger[level]({ err: error, retry_in_ms: delayMs }, 'claim failed');
  await pause(delayMs, stopSignal);
}
