import { type FetchLike, HttpClient } from './http-client.js';
import type {
  ClaimParams,
  ClaimResponse,
  CompleteParams,
  FailParams,
  HeartbeatParams,
  HeartbeatResponse,
  Job,
  LeaseParams,
  ReportsResponse,
  WorkerReport,
} from './types.js';

export interface WorkerApiOptions {
  /** An API key with the worker scope. */
  apiKey: string;
  baseUrl: string;
  timeoutMs?: number;
  maxRetries?: number;
  fetch?: FetchLike;
}

/**
 * The reports on a held lease, each answered on its own: sent one request each (WorkerApi) or
 * gathered into batches (ReportBatcher). A lease no longer held rejects with ConflictError (409).
 */
export interface LeaseReports {
  heartbeat(
    jobId: string,
    params: HeartbeatParams,
    options?: { signal?: AbortSignal },
  ): Promise<HeartbeatResponse>;
  complete(jobId: string, params: CompleteParams, options?: { signal?: AbortSignal }): Promise<Job>;
  fail(jobId: string, params: FailParams, options?: { signal?: AbortSignal }): Promise<Job>;
  cancelled(jobId: string, params: LeaseParams, options?: { signal?: AbortSignal }): Promise<Job>;
  release(jobId: string, params: LeaseParams, options?: { signal?: AbortSignal }): Promise<Job>;
}

/**
 * The worker protocol, one method per route. createWorker() drives it; use it directly to
 * build another kind of worker. Every call after the claim carries the lease token; a lease that
 * is no longer held answers ConflictError (409).
 */
export class WorkerApi implements LeaseReports {
  readonly http: HttpClient;

  constructor(options: WorkerApiOptions | HttpClient) {
    this.http = options instanceof HttpClient ? options : new HttpClient(options);
  }

  /**
   * Leases up to `limit` queued jobs, each with its restored request. Not retried by the SDK:
   * a claim whose answer was lost leaves its jobs leased until their lease runs out.
   */
  async claim(params: ClaimParams, options: { signal?: AbortSignal } = {}): Promise<ClaimResponse> {
    const { data } = await this.http.request<ClaimResponse>('POST', '/v1/worker/claim', {
      body: params,
      signal: options.signal,
      timeoutMs: this.http.timeoutMs + (params.wait_seconds ?? 0) * 1000,
    });
    return data;
  }

  // The reports below are fenced by the lease token: sending one again after a lost answer can at
  // worst be refused with a 409, so they are retried like reads.

  async heartbeat(jobId: string, params: HeartbeatParams, options: { signal?: AbortSignal } = {}) {
    return this.#post<HeartbeatResponse>(jobId, 'heartbeat', params, options.signal);
  }

  async complete(jobId: string, params: CompleteParams, options: { signal?: AbortSignal } = {}) {
    return this.#post<Job>(jobId, 'complete', params, options.signal);
  }

  async fail(jobId: string, params: FailParams, options: { signal?: AbortSignal } = {}) {
    return this.#post<Job>(jobId, 'fail', params, options.signal);
  }

  /** After a heartbeat said cancel_requested and the work stopped: the job ends cancelled. */
  async cancelled(jobId: string, params: LeaseParams, options: { signal?: AbortSignal } = {}) {
    return this.#post<Job>(jobId, 'cancelled', params, options.signal);
  }

  /** Hands the job back (shutting down): queued again at once, without using up an attempt. */
  async release(jobId: string, params: LeaseParams, options: { signal?: AbortSignal } = {}) {
    return this.#post<Job>(jobId, 'release', params, options.signal);
  }

  /**
   * Up to 100 reports of any kinds, at most one per job, in one request. The request succeeds as
   * a whole (each report fenced by its own lease, so it is retried like the single reports);
   * each report is answered in `data`, in order, with the status its single route would have
   * answered: check `status_code` of each.
   */
  async reports(reports: WorkerReport[], options: { signal?: AbortSignal } = {}): Promise<ReportsResponse> {
    const { data } = await this.http.request<ReportsResponse>('POST', '/v1/worker/reports', {
      body: { reports },
      signal: options.signal,
      retry: true,
    });
    return data;
  }

  async #post<T>(jobId: string, action: string, body: unknown, signal: AbortSignal | undefined): Promise<T> {
    const path = `/v1/worker/jobs/${encodeURIComponent(jobId)}/${action}`;
    const { data } = await this.http.request<T>('POST', path, { body, signal, retry: true });
    return data;
  }
}
