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

/** Claims jobs into free slots until stopped. A failed claim is retried with backoff, never thrown. */
export async function runClaimLoop(deps: ClaimLoopDeps): Promise<void> {
  const { settings, held, stopSignal } = deps;
  stopSignal.addEventListener('abort', () => held.wakeSlotWaiters(), { once: true });
  let failures = 0;
  while (!stopSignal.aborted) {
    const free = settings.concurrency - held.size;
    // Claim in batches: while jobs run, wait until at least half a batch of slots is free,
    // instead of one claim request per finished job.
    if (free <= 0 || (held.size > 0 && free < settings.claimThreshold)) {
      await held.slotFreed();
      continue;
    }
    let claimed: ClaimedJob[];
    try {
      claimed = await claim(deps, Math.min(free, settings.batchSize));
      failures = 0;
    } catch (error) {
      if (stopSignal.aborted) break;
      await backOff(deps, error, failures++);
      continue;
    }
    for (const job of claimed) {
      if (stopSignal.aborted) {
        deps.handBack(job);
      } else {
        settings.logger.debug?.({ job_id: job.job.id, endpoint: job.job.endpoint }, 'job claimed');
        deps.startJob(job);
      }
    }
  }
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
