/** Why a handler's `ctx.signal` aborted: `ctx.signal.reason` is one of these. */

/** The client cancelled the job; the worker reports it cancelled once the handler returns. */
export class JobCancelledError extends Error {
  override name = 'JobCancelledError';
  constructor(readonly jobId: string) {
    super(`Job '${jobId}' was cancelled by the client.`);
  }
}

/** The worker no longer holds the job (its lease ran out and it was taken back); nothing is reported. */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
  constructor(
    readonly jobId: string,
    options?: { cause?: unknown },
  ) {
    super(
      `The lease of job '${jobId}' was lost: another worker may run it; this result will be dropped.`,
      options,
    );
  }
}

/** The worker shut down before the handler finished; the job was handed back to the queue. */
export class WorkerShutdownError extends Error {
  override name = 'WorkerShutdownError';
  constructor(readonly jobId: string) {
    super(`The worker stopped before job '${jobId}' finished; the job was released to the queue.`);
  }
}
