import { apiErrorFor, BadRequestError, JobsError, PayloadTooLargeError } from './errors.js';
import { isRetryable, retryDelayMs } from './http-client.js';
import { sleep } from './sleep.js';
import type {
  CompleteParams,
  FailParams,
  HeartbeatParams,
  HeartbeatResponse,
  Job,
  LeaseParams,
  WorkerReport,
  WorkerReportResult,
} from './types.js';
import type { LeaseReports, WorkerApi } from './worker-api.js';

/** The server's limit of reports per request. */
export const MAX_REPORT_BATCH = 100;

export interface ReportBatcherOptions {
  /** Most reports per request, 1..100. */
  batchSize: number;
  /** How long the first pending report waits for others before they are sent together, in ms. */
  flushMs: number;
  /**
   * How many jobs could have a report pending or in flight right now (a worker: the jobs it
   * holds). Once that many do, nothing else can join the batch, so it goes out without waiting
   * for flushMs.
   */
  expected?: () => number;
}

interface Pending {
  report: WorkerReport;
  resolve(result: WorkerReportResult): void;
  reject(error: unknown): void;
  /** Times the report itself was answered with a retryable status (429, 502, 503, 504). */
  retries: number;
  /** Forgets the caller's signal once the report is sent; set only when there is one. */
  unlisten: (() => void) | undefined;
}

/**
 * Gathers reports on leases into POST /v1/worker/reports requests: a batch goes out when
 * `batchSize` are pending (or every report that could be), else `flushMs` after the first one.
 * Each caller gets its own report's answer, as the single route would have given it: the job,
 * the heartbeat, or the JobsApiError of its status (ConflictError for a lease no longer held, …).
 *
 * A failed request (5xx, connection) is retried as a whole like the single reports, then
 * rejects every report of it; one refused whole as too large or malformed (413, 400) is split
 * in halves until the report at fault is alone. A report answered 429/502/503/504 on its own
 * (storage unavailable for a response) is sent again in a later batch after a backoff. A job
 * has one report in flight at a time: a second one waits for the first's answer.
 */
export class ReportBatcher implements LeaseReports {
  readonly #api: WorkerApi;
  readonly #options: ReportBatcherOptions;
  #queue: Pending[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #dueAt = 0;
  /** Jobs with a report in flight. */
  readonly #busy = new Set<string>();
  /** Requests in flight and reports pausing before a retry: what drain() waits for. */
  readonly #work = new Set<Promise<void>>();
  #hurried = false;

  constructor(api: WorkerApi, options: ReportBatcherOptions) {
    this.#api = api;
    this.#options = {
      ...options,
      batchSize: Math.min(Math.max(Math.floor(options.batchSize), 1), MAX_REPORT_BATCH),
      flushMs: Math.max(options.flushMs, 0),
    };
  }

  /** Reports waiting to be sent. */
  get pending(): number {
    return this.#queue.length;
  }

  async heartbeat(jobId: string, params: HeartbeatParams, options: { signal?: AbortSignal } = {}) {
    const answer = await this.send({ type: 'heartbeat', job_id: jobId, ...params }, options);
    return answer.heartbeat as HeartbeatResponse;
  }

  async complete(jobId: string, params: CompleteParams, options: { signal?: AbortSignal } = {}) {
    return (await this.send({ type: 'complete', job_id: jobId, ...params }, options)).job as Job;
  }

  async fail(jobId: string, params: FailParams, options: { signal?: AbortSignal } = {}) {
    return (await this.send({ type: 'fail', job_id: jobId, ...params }, options)).job as Job;
  }

  async cancelled(jobId: string, params: LeaseParams, options: { signal?: AbortSignal } = {}) {
    return (await this.send({ type: 'cancelled', job_id: jobId, ...params }, options)).job as Job;
  }

  async release(jobId: string, params: LeaseParams, options: { signal?: AbortSignal } = {}) {
    return (await this.send({ type: 'release', job_id: jobId, ...params }, options)).job as Job;
  }

  /**
   * Queues a report; resolves with its answer when that is a 200, else rejects with its error.
   * An abort of `signal` withdraws the report while it is still waiting (rejecting with the
   * signal's reason); once sent, its answer is awaited.
   */
  send(report: WorkerReport, options: { signal?: AbortSignal } = {}): Promise<WorkerReportResult> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const pending: Pending = { report, resolve, reject, retries: 0, unlisten: undefined };
      if (signal) {
        const withdraw = () => {
          const at = this.#queue.indexOf(pending);
          if (at < 0) return;
          this.#queue.splice(at, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', withdraw, { once: true });
        pending.unlisten = () => signal.removeEventListener('abort', withdraw);
      }
      this.#enqueue(pending);
    });
  }

  /** Sends every pending report now, in as many requests as it takes. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#queue.length > 0) {
      const batch = this.#takeBatch();
      if (batch.length === 0) return; // what is left waits for its job's report in flight
      this.#track(this.#dispatch(batch));
    }
  }

  /**
   * Sends what is pending now and, from then on, every report as soon as the reports queued in
   * the same tick have joined it, without waiting for flushMs: a stopping worker wants to be done.
   */
  hurry(): void {
    this.#hurried = true;
    this.flush();
  }

  /** hurry(), then resolves once every report is answered, retries included. */
  async drain(): Promise<void> {
    this.#hurried = true;
    while (this.#queue.length > 0 || this.#work.size > 0) {
      this.flush();
      await Promise.all(this.#work);
    }
  }

  #enqueue(pending: Pending): void {
    this.#queue.push(pending);
    const { batchSize, flushMs, expected } = this.#options;
    if (this.#queue.length >= batchSize) {
      this.flush();
      return;
    }
    // Every job that could report has a report here or in flight (none can send a second one
    // before the first is answered), or the worker is stopping: go as soon as the reports queued
    // in this same tick have joined.
    const complete = this.#queue.length + this.#busy.size >= Math.max(1, expected?.() ?? batchSize);
    this.#schedule(complete || this.#hurried ? 0 : flushMs);
  }

  /** Flushes in `ms` unless a flush is already due sooner. */
  #schedule(ms: number): void {
    const at = performance.now() + ms;
    if (this.#timer !== undefined && this.#dueAt <= at) return;
    clearTimeout(this.#timer);
    this.#dueAt = at;
    this.#timer = setTimeout(() => this.flush(), ms);
  }

  /** The oldest pending reports, up to batchSize, one per job, none of a job with a report in flight. */
  #takeBatch(): Pending[] {
    const batch: Pending[] = [];
    const jobs = new Set<string>();
    const rest: Pending[] = [];
    for (const pending of this.#queue) {
      const jobId = pending.report.job_id;
      if (batch.length < this.#options.batchSize && !jobs.has(jobId) && !this.#busy.has(jobId)) {
        jobs.add(jobId);
        batch.push(pending);
      } else rest.push(pending);
    }
    this.#queue = rest;
    return batch;
  }

  #track(promise: Promise<void>): void {
    const work = promise.catch(() => undefined);
    this.#work.add(work);
    void work.finally(() => this.#work.delete(work));
  }

  async #dispatch(batch: Pending[]): Promise<void> {
    for (const pending of batch) {
      pending.unlisten?.();
      this.#busy.add(pending.report.job_id);
    }
    try {
      await this.#post(batch);
    } finally {
      const jobs = new Set(batch.map((pending) => pending.report.job_id));
      for (const jobId of jobs) this.#busy.delete(jobId);
      // Reports held back behind these reports have waited already: they go now.
      if (this.#queue.some((pending) => jobs.has(pending.report.job_id))) this.#schedule(0);
    }
  }

  async #post(batch: Pending[]): Promise<void> {
    let answers: WorkerReportResult[];
    try {
      answers = (await this.#api.reports(batch.map((p) => p.report))).data;
      if (answers?.length !== batch.length) {
        throw new JobsError(`The server answered ${answers?.length} results for ${batch.length} reports.`);
      }
    } catch (error) {
      // A report too large or too deeply nested spoils the whole request: halve it until that
      // report is alone, so that the others are answered on their own.
      if (batch.length > 1 && (error instanceof PayloadTooLargeError || error instanceof BadRequestError)) {
        const half = Math.ceil(batch.length / 2);
        await Promise.all([this.#post(batch.slice(0, half)), this.#post(batch.slice(half))]);
        return;
      }
      for (const pending of batch) pending.reject(error);
      return;
    }
    answers.forEach((answer, i) => {
      this.#settle(batch[i] as Pending, answer);
    });
  }

  #settle(pending: Pending, answer: WorkerReportResult): void {
    if (answer.status_code === 200) {
      pending.resolve(answer);
      return;
    }
    const error = apiErrorFor({
      status: answer.status_code,
      code: answer.error?.code ?? `http_${answer.status_code}`,
      message: answer.error?.message ?? `The report was answered ${answer.status_code}.`,
      details: answer.error?.details,
    });
    if (!isRetryable(error) || pending.retries >= this.#api.http.maxRetries) {
      pending.reject(error);
      return;
    }
    // Refused for now (storage unavailable for this response): the lease is unchanged, try again.
    const delayMs = retryDelayMs(pending.retries++, error);
    this.#track(sleep(delayMs).then(() => this.#enqueue(pending)));
  }
}
