import { type FetchLike, HttpClient } from './http-client.js';
import { Jobs } from './jobs.js';

export interface JobsClientOptions {
  /** An API key with the client scope. */
  apiKey: string;
  /** Where the server is, including any BASE_PATH, e.g. http://localhost:8080. */
  baseUrl: string;
  /** Limit for one HTTP request, in ms (default 30 000); long polls get their wait on top. */
  timeoutMs?: number;
  /** Retries of safe requests after 429/502/503/504 or a connection failure (default 2). */
  maxRetries?: number;
  fetch?: FetchLike;
}

/** The client half of the API: `new JobsClient({apiKey, baseUrl}).jobs.create(...)`. */
export class JobsClient {
  readonly jobs: Jobs;
  readonly http: HttpClient;

  constructor(options: JobsClientOptions) {
    this.http = new HttpClient(options);
    this.jobs = new Jobs(this.http);
  }
}
