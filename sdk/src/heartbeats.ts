import { ConflictError, NotFoundError } from './errors.js';
import type { WorkerLogger } from './logger.js';
import type { WorkerApi } from './worker-api.js';

export interface HeartbeatEvents {
  /** The client asked to cancel the job. Called once. */
  onCancelRequested(): void;
  /** The lease is gone (409/404): another worker may hold the job. Heartbeats stop. */
  onLeaseLost(error: unknown): void;
}

export interface Heartbeats {
  /** Stops the timer and waits for a heartbeat in flight, so none lands after the report. */
  stop(): Promise<void>;
}

/** Renews a job's lease every `intervalMs` until stopped. */
export function startHeartbeats(
  api: WorkerApi,
  lease: { jobId: string; leaseToken: string; leaseSeconds: number; intervalMs: number },
  events: HeartbeatEvents,
  logger: WorkerLogger,
): Heartbeats {
  let stopped = false;
  let cancelSeen = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inFlight: Promise<void> = Promise.resolve();

  const beat = async () => {
    try {
      const answer = await api.heartbeat(lease.jobId, {
        lease_token: lease.leaseToken,
        lease_seconds: lease.leaseSeconds,
      });
      if (answer.cancel_requested && !cancelSeen && !stopped) {
        cancelSeen = true;
        events.onCancelRequested();
      }
    } catch (error) {
      if (error instanceof ConflictError || error instanceof NotFoundError) {
        stopped = true;
        events.onLeaseLost(error);
        return;
      }
      // The lease is still ours until it runs out: keep trying at the next beat.
      logger.warn({ job_id: lease.jobId, err: error }, 'heartbeat failed');
    }
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      inFlight = beat().finally(schedule);
    }, lease.intervalMs);
  };
  schedule();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inFlight;
    },
  };
}
