import { backoffDelayMs } from './backoff.js';
import { apiErrorFor, ConnectionError, JobsApiError, TimeoutError } from './errors.js';
import { sleep } from './sleep.js';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface HttpClientOptions {
  apiKey: string;
  /** Where the server is, including any BASE_PATH it is served under, e.g. https://jobs.example.com. */
  baseUrl: string;
  /** Limit for one HTTP request, in ms (default 30 000). Long polls get their wait on top. */
  timeoutMs?: number;
  /** Retries of a retryable request after a 429/502/503/504 or a connection failure (default 2). */
  maxRetries?: number;
  /** A fetch implementation (default: the global one). */
  fetch?: FetchLike;
}

export type QueryValue = string | number | boolean | undefined | null;

export interface RequestOptions {
  query?: Record<string, QueryValue>;
  body?: unknown;
  headers?: Record<string, string | undefined>;
  signal?: AbortSignal;
  /** Overrides the client's timeoutMs for this request. */
  timeoutMs?: number;
  /** Safe to send again after a failure that may or may not have reached the server. */
  retry?: boolean;
  /** Statuses besides 2xx that are answers rather than errors (e.g. 304). */
  acceptStatuses?: readonly number[];
}

export interface HttpResponse<T> {
  status: number;
  headers: Headers;
  /** Parsed JSON body; undefined when the answer has none. */
  data: T;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const RETRYABLE_STATUSES = new Set([429, 502, 503, 504]);
const BASE_RETRY_DELAY_MS = 500;
const MAX_RETRY_DELAY_MS = 8_000;

/** Exponential backoff with jitter; a Retry-After in seconds from the server wins when present. */
export function retryDelayMs(retry: number, error: unknown): number {
  if (error instanceof JobsApiError) {
    const seconds = Number(error.headers?.get('retry-after'));
    if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, 60_000);
  }
  return backoffDelayMs(retry, { initialMs: BASE_RETRY_DELAY_MS, maxMs: MAX_RETRY_DELAY_MS });
}

/** A failure that may not happen again: 429/502/503/504, a connection failure, a timeout. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof JobsApiError) return RETRYABLE_STATUSES.has(error.status);
  return error instanceof ConnectionError || error instanceof TimeoutError;
}

/** fetch says only "fetch failed"; the socket error (ECONNREFUSED, …) is in its cause. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  const detail = cause?.code ?? cause?.message;
  return detail ? `${error.message} (${String(detail)})` : error.message;
}

async function parseBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function toApiError(status: number, statusText: string, headers: Headers, body: unknown): JobsApiError {
  const detail = (body as { detail?: unknown } | undefined)?.detail;
  const requestId = headers.get('x-request-id') ?? undefined;
  if (detail && typeof detail === 'object') {
    const { code, message, details } = detail as Record<string, unknown>;
    return apiErrorFor({
      status,
      code: typeof code === 'string' ? code : `http_${status}`,
      message: typeof message === 'string' ? message : `HTTP ${status} ${statusText}`,
      details: details && typeof details === 'object' ? (details as Record<string, unknown>) : undefined,
      requestId,
      headers,
    });
  }
  // Not the server's error shape: a proxy or load balancer answered.
  const text = typeof body === 'string' ? body.slice(0, 500) : '';
  return apiErrorFor({
    status,
    code: `http_${status}`,
    message: text || `HTTP ${status} ${statusText}`,
    requestId,
    headers,
  });
}

/** JSON over HTTP with the API key, a timeout per request, typed errors and bounded retries. */
export class HttpClient {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly #apiKey: string;
  readonly #fetch: FetchLike;

  constructor(options: HttpClientOptions) {
    if (!options.apiKey) throw new TypeError('apiKey is required.');
    if (!options.baseUrl) throw new TypeError('baseUrl is required.');
    this.#apiKey = options.apiKey;
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRetries = options.maxRetries ?? 2;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  url(path: string, query?: Record<string, QueryValue>): string {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<HttpResponse<T>> {
    const retries = options.retry ? this.maxRetries : 0;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#send<T>(method, path, options);
      } catch (error) {
        if (attempt >= retries || !isRetryable(error) || options.signal?.aborted) throw error;
        await sleep(retryDelayMs(attempt, error), options.signal);
      }
    }
  }

  async #send<T>(method: string, path: string, options: RequestOptions): Promise<HttpResponse<T>> {
    const headers: Record<string, string> = { 'api-key': this.#apiKey, accept: 'application/json' };
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      if (value !== undefined) headers[name.toLowerCase()] = value;
    }
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }

    // One controller for the caller's signal and the timeout, so the two can be told apart.
    const controller = new AbortController();
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const onAbort = () => controller.abort(options.signal?.reason);
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });

    try {
      const response = await this.#fetch(this.url(path, options.query), {
        method,
        headers,
        body,
        signal: controller.signal,
      });
      // The body is read under the same timeout: a server may stall after the headers.
      const data = await parseBody(response);
      const ok =
        (response.status >= 200 && response.status < 300) ||
        options.acceptStatuses?.includes(response.status);
      if (!ok) throw toApiError(response.status, response.statusText, response.headers, data);
      return { status: response.status, headers: response.headers, data: data as T };
    } catch (error) {
      if (error instanceof JobsApiError) throw error;
      if (options.signal?.aborted) throw options.signal.reason;
      if (timedOut) {
        throw new TimeoutError(`${method} ${path} took longer than ${timeoutMs} ms.`, { cause: error });
      }
      throw new ConnectionError(`${method} ${path} failed: ${describe(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }
}
