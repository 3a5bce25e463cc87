import type { WorkerLogger } from './logger.js';
import type { Job } from './types.js';

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
