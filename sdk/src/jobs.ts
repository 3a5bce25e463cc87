import type { HttpClient, QueryValue } from './http-client.js';
import type {
  CallOptions,
  RetrieveOptions,
  StatusOptions,
  StatusResult,
  StatusSnapshot,
} from './job-call-options.js';
import type {
  CreateJobParams,
  Job,
  JobAttemptList,
  JobList,
  JobStatusView,
  ListJobsParams,
} from './types.js';
import { type WaitForCompletionOptions, waitForCompletion } from './wait-for-completion.js';

export interface CreateOptions extends CallOptions {
  /**
   * The same key with the same body returns the original job instead of a second one. With a key,
   * a create that failed on the way (connection error, 503) is retried safely.
   */
  idempotencyKey?: string;
}

export type IterateParams = Omit<ListJobsParams, 'before'>;

const jobPath = (id: string) => `/v1/jobs/${encodeURIComponent(id)}`;
const flag = (value: boolean | undefined) => (value === undefined ? undefined : String(value));

/** client.jobs: create, read, list, cancel and retry jobs. */
export class Jobs {
  constructor(private readonly http: HttpClient) {}

  /** Creates a job. Answers it lightweight (request and response null). */
  async create(params: CreateJobParams, options: CreateOptions = {}): Promise<Job> {
    const { data } = await this.http.request<Job>('POST', '/v1/jobs', {
      body: params,
      headers: { 'idempotency-key': options.idempotencyKey },
      signal: options.signal,
      retry: options.idempotencyKey !== undefined,
    });
    return data;
  }

  /** The job, lightweight by default: request and response null, no storage read on the server. */
  async retrieve(id: string, options: RetrieveOptions = {}): Promise<Job> {
    const { data } = await this.http.request<Job>('GET', jobPath(id), {
      query: {
        include_request: flag(options.includeRequest),
        include_response: flag(options.includeResponse),
      },
      signal: options.signal,
      retry: true,
    });
    return data;
  }

  /** The job with its original request and (when completed) its response restored. */
  retrieveFull(id: string, options: CallOptions = {}): Promise<Job> {
    return this.retrieve(id, { ...options, includeRequest: true, includeResponse: true });
  }

  /** Lifecycle fields only. Without `etag` the answer is always a snapshot. */
  status(id: string, options?: StatusOptions & { etag?: undefined }): Promise<StatusSnapshot>;
  status(id: string, options: StatusOptions): Promise<StatusResult>;
  async status(id: string, options: StatusOptions = {}): Promise<StatusResult> {
    const waitSeconds = options.waitSeconds ?? 0;
    const response = await this.http.request<JobStatusView | undefined>('GET', `${jobPath(id)}/status`, {
      query: { wait_seconds: waitSeconds > 0 ? waitSeconds : undefined },
      headers: { 'if-none-match': options.etag },
      signal: options.signal,
      // The server may hold the answer for the whole wait.
      timeoutMs: this.http.timeoutMs + waitSeconds * 1000,
      retry: true,
      acceptStatuses: [304],
    });
    const etag = response.headers.get('etag');
    if (response.status === 304)
      return { notModified: true, job: null, etag: etag ?? (options.etag as string) };
    return { notModified: false, job: response.data as JobStatusView, etag };
  }

  /** One page. Follow `list_metadata.after` for the next one, or use iterate(). */
  async list(params: ListJobsParams = {}, options: CallOptions = {}): Promise<JobList> {
    const query: Record<string, QueryValue> = {
      limit: params.limit,
      order: params.order,
      after: params.after,
      before: params.before,
      status: params.status,
      endpoint: params.endpoint,
      metadata: params.metadata === undefined ? undefined : JSON.stringify(params.metadata),
      from_date: params.from_date,
      to_date: params.to_date,
      include_request: flag(params.include_request),
      include_response: flag(params.include_response),
    };
    const { data } = await this.http.request<JobList>('GET', '/v1/jobs', {
      query,
      signal: options.signal,
      retry: true,
    });
    return data;
  }

  /**
   * Every job matching `params`, page after page (`limit` is the page size), following the
   * `after` cursors: `for await (const job of client.jobs.iterate({status: 'failed'}))`.
   */
  async *iterate(
    params: IterateParams = {},
    options: CallOptions = {},
  ): AsyncGenerator<Job, void, undefined> {
    let after = params.after;
    for (;;) {
      const page = await this.list({ ...params, after }, options);
      yield* page.data;
      after = page.list_metadata.after ?? undefined;
      if (after === undefined || page.data.length === 0) return;
    }
  }

  /** iterate() collected into an array. */
  async listAll(params: IterateParams = {}, options: CallOptions = {}): Promise<Job[]> {
    const jobs: Job[] = [];
    for await (const job of this.iterate(params, options)) jobs.push(job);
    return jobs;
  }

  /**
   * A queued job is cancelled at once; a running one gets `cancelled: true` and ends cancelled when
   * its worker stops. A terminal job, or one already being cancelled: ConflictError.
   */
  async cancel(id: string, options: CallOptions = {}): Promise<Job> {
    const { data } = await this.http.request<Job>('POST', `${jobPath(id)}/cancel`, {
      signal: options.signal,
    });
    return data;
  }

  /** A failed or cancelled job goes back to queued under the same id; otherwise ConflictError. */
  async retry(id: string, options: CallOptions = {}): Promise<Job> {
    const { data } = await this.http.request<Job>('POST', `${jobPath(id)}/retry`, { signal: options.signal });
    return data;
  }

  /** Every execution of the job, first to last. */
  async attempts(id: string, options: CallOptions = {}): Promise<JobAttemptList> {
    const { data } = await this.http.request<JobAttemptList>('GET', `${jobPath(id)}/attempts`, {
      signal: options.signal,
      retry: true,
    });
    return data;
  }

  /**
   * Waits until the job is terminal (completed, failed, cancelled or expired; a failed job is
   * returned, not thrown) and returns it with its response (include_response=true) and without its
   * request, unless the options say otherwise. Throws WaitTimeoutError after timeoutSeconds.
   */
  waitForCompletion(id: string, options: WaitForCompletionOptions = {}): Promise<Job> {
    return waitForCompletion(this, id, options);
  }
}
