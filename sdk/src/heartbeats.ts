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

export interface HeartbeatLease {
  jobId: string;
  leaseToken: string;
  leaseSeconds: number;
  intervalMs: number;
}

/** The reason a heartbeat is withdrawn with: made once, as a DOMException per abort would cost. */
const WITHDRAWN = Object.freeze({ reason: 'heartbeat withdrawn: the heartbeats stopped' });

/**
 * A class rather than closures, and a controller only while a beat is out: a worker starts this
 * for every job, and most trivial jobs finish long before their first heartbeat.
 */
class LeaseHeartbeats implements Heartbeats {
  #stopped = false;
  #cancelSeen = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight: Promise<void> | undefined;
  #withdraw: AbortController | undefined;

  constructor(
    readonly reports: LeaseReports,
    readonly lease: HeartbeatLease,
    readonly events: HeartbeatEvents,
    readonly logger: WorkerLogger,
  ) {
    this.schedule();
  }

  schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(beatNow, this.lease.intervalMs, this);
  }

  beat(): void {
    this.#inFlight = this.#beat().finally(() => this.schedule());
  }

  async #beat(): Promise<void> {
    const { jobId, leaseToken, leaseSeconds } = this.lease;
    const withdraw = new AbortController();
    this.#withdraw = withdraw;
    try {
      const answer = await this.reports.heartbeat(
        jobId,
        { lease_token: leaseToken, lease_seconds: leaseSeconds },
        { signal: withdraw.signal },
      );
      if (answer.cancel_requested && !this.#cancelSeen && !this.#stopped) {
        this.#cancelSeen = true;
        this.events.onCancelRequested();
      }
    } catch (error) {
      // Withdrawn before it was sent: the job is being reported, nothing was renewed or lost.
      if (error === WITHDRAWN) return;
      if (error instanceof ConflictError || error instanceof NotFoundError) {
        this.#stopped = true;
        this.events.onLeaseLost(error);
        return;
      }
      // The lease is still ours until it runs out: keep trying at the next beat.
      this.logger.warn({ job_id: jobId, err: error }, 'heartbeat failed');
    } finally {
      this.#withdraw = undefined;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#withdraw?.abort(WITHDRAWN);
    await this.#inFlight;
  }
}

function beatNow(heartbeats: LeaseHeartbeats): void {
  heartbeats.beat();
}

/** Renews a job's lease every `intervalMs` until stopped. */
export function startHeartbeats(
  reports: LeaseReports,
  lease: HeartbeatLease,
  events: HeartbeatEvents,
  logger: WorkerLogger,
): Heartbeats {
  return new LeaseHeartbeats(reports, lease, events, logger);
}
