import { ConflictError, NotFoundError } from './errors.js';
import type { WorkerLogger } from './logger.js';
import type { LeaseReports } from './worker-api.js';

export interface HeartbeatEvents {
  /** The client asked to cancel the job. Called once. */
  onCancelRequested(): void;
  /** The lease is gone (409/404): another worker may hold the job. Heartbeats stop. */
  onLeaseLost(error: unknown): void;
}

export interface Heartbeats {
  /**
   * Stops the timer, withdraws a heartbeat still waiting for its batch and waits for one already
   * sent, so none lands after the report.
   */
  stop(): Promise<void>;
}

/** The reason a heartbeat is withdrawn with: made once, as a DOMException per abort would cost. */
const WITHDRAWN = Object.freeze({ reason: 'heartbeat withdrawn: the heartbeats stopped' });

/** Renews a job's lease every `intervalMs` until stopped. */
export function startHeartbeats(
  reports: LeaseReports,
  lease: { jobId: string; leaseToken: string; leaseSeconds: number; intervalMs: number },
  events: HeartbeatEvents,
  logger: WorkerLogger,
): Heartbeats {
  let stopped = false;
  let cancelSeen = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  // Made for each beat rather than once per job: most jobs finish before their first heartbeat,
  // and an AbortController is not free when a worker runs thousands of jobs a second.
  let withdraw: AbortController | undefined;

  const beat = async () => {
    const beatWithdraw = new AbortController();
    withdraw = beatWithdraw;
    try {
      const answer = await reports.heartbeat(
        lease.jobId,
        { lease_token: lease.leaseToken, lease_seconds: lease.leaseSeconds },
        { signal: beatWithdraw.signal },
      );
      if (answer.cancel_requested && !cancelSeen && !stopped) {
        cancelSeen = true;
        events.onCancelRequested();
      }
    } catch (error) {
      // Withdrawn before it was sent: the job is being reported, nothing was renewed or lost.
      if (error === WITHDRAWN) return;
      if (error instanceof ConflictError || error instanceof NotFoundError) {
        stopped = true;
        events.onLeaseLost(error);
        return;
      }
      // The lease is still ours until it runs out: keep trying at the next beat.
      logger.warn({ job_id: lease.jobId, err: error }, 'heartbeat failed');
    } finally {
      withdraw = undefined;
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
      withdraw?.abort(WITHDRAWN);
      await inFlight;
    },
  };
}
