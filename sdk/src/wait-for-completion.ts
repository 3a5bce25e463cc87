import { WaitTimeoutError } from './errors.js';
import type { JobPoller, StatusResult } from './job-call-options.js';
import { sleep } from './sleep.js';
import { isTerminalStatus, type Job, type JobStatusView } from './types.js';

export interface WaitForCompletionOptions {
  /** Pause between polls when the server cannot hold a poll open (default 2). */
  pollIntervalSeconds?: number;
  /** Give up after this long with a WaitTimeoutError (default 300). */
  timeoutSeconds?: number;
  /** Include the restored request in the returned job (default false). */
  includeRequest?: boolean;
  /** Include the response in the returned job (default true). */
  includeResponse?: boolean;
  signal?: AbortSignal;
  /** Called with every state seen, the first one included. */
  onStatus?: (status: JobStatusView) => void;
}

/** The status route holds a poll at most this long. */
const SERVER_MAX_WAIT_SECONDS = 60;

/**
 * Long-polls the status route: each request asks the server to hold the answer until the job's
 * state differs from the last one seen (its etag), so a change is seen as soon as it happens and
 * no request is sent while nothing changes. When the server answers early without a change (it
 * does not support waiting, or it is shutting down), polls at pollIntervalSeconds instead of spinning.
 */
export async function waitForCompletion(
  jobs: JobPoller,
  jobId: string,
  options: WaitForCompletionOptions = {},
): Promise<Job> {
  const { signal } = options;
  const pollMs = (options.pollIntervalSeconds ?? 2) * 1000;
  const timeoutSeconds = options.timeoutSeconds ?? 300;
  const deadline = Date.now() + timeoutSeconds * 1000;

  const first = await jobs.status(jobId, { signal });
  let last = first.job;
  let etag = first.etag ?? undefined;
  options.onStatus?.(last);
  const fingerprint = (answer: StatusResult) =>
    answer.notModified ? etag : (answer.etag ?? JSON.stringify(answer.job));
  let seen = fingerprint(first);

  while (!isTerminalStatus(last.status)) {
    const remainingMs = deadline - Date.now();
    if (remainingMs <= 0) throw new WaitTimeoutError(jobId, last, timeoutSeconds);
    const waitSeconds = Math.min(SERVER_MAX_WAIT_SECONDS, Math.floor(remainingMs / 1000));
    // Less than a second left: the server only waits whole seconds.
    if (waitSeconds < 1) await sleep(Math.min(pollMs, remainingMs), signal);

    const started = Date.now();
    const answer = await jobs.status(jobId, { waitSeconds, etag, signal });
    const elapsedMs = Date.now() - started;
    const changed = fingerprint(answer) !== seen;
    if (!answer.notModified) {
      last = answer.job;
      etag = answer.etag ?? undefined;
      seen = fingerprint(answer);
      if (changed) options.onStatus?.(last);
    }
    if (!changed && waitSeconds >= 1 && elapsedMs < (waitSeconds * 1000) / 2) {
      await sleep(Math.max(0, Math.min(pollMs, deadline - Date.now())), signal);
    }
  }
  return jobs.retrieve(jobId, {
    includeRequest: options.includeRequest ?? false,
    includeResponse: options.includeResponse ?? true,
    signal,
  });
}
