import type { Job, JobStatusView } from './types.js';

export interface CallOptions {
  signal?: AbortSignal;
}

export interface RetrieveOptions extends CallOptions {
  /** Restore and include the original request (default false). */
  includeRequest?: boolean;
  /** Restore and include the response of a completed job (default false). */
  includeResponse?: boolean;
}

export interface StatusOptions extends CallOptions {
  /** 0..60: hold the answer until the job's state differs from the one the client has. */
  waitSeconds?: number;
  /** The etag of an earlier answer: the server answers "not modified" while the state is the same. */
  etag?: string;
}

/** The job's current lifecycle state. */
export interface StatusSnapshot {
  notModified: false;
  job: JobStatusView;
  /** Pass it back as `etag` to learn only of changes. */
  etag: string | null;
}

/** The job is still in the state the given etag names (HTTP 304). */
export interface StatusNotModified {
  notModified: true;
  job: null;
  etag: string;
}

export type StatusResult = StatusSnapshot | StatusNotModified;

/** What waiting for a job needs of `client.jobs`. */
export interface JobPoller {
  status(id: string, options?: StatusOptions & { etag?: undefined }): Promise<StatusSnapshot>;
  status(id: string, options: StatusOptions): Promise<StatusResult>;
  retrieve(id: string, options?: RetrieveOptions): Promise<Job>;
}
