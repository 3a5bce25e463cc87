/**
 * The objects of the jobs API, written out by hand so the SDK has no dependency on the server.
 * Field names are the wire names (snake_case); they mirror the server's TypeBox schemas.
 */

export const JOB_STATUSES = [
  'validating',
  'queued',
  'in_progress',
  'completed',
  'failed',
  'cancelled',
  'expired',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** A job in one of these statuses never changes again, except by an explicit retry. */
export const TERMINAL_JOB_STATUSES = ['completed', 'failed', 'cancelled', 'expired'] as const;
export type TerminalJobStatus = (typeof TERMINAL_JOB_STATUSES)[number];

export function isTerminalStatus(status: JobStatus): status is TerminalJobStatus {
  return (TERMINAL_JOB_STATUSES as readonly string[]).includes(status);
}

/** The built-in endpoints; a server may accept more (EXTRA_ENDPOINTS), so any string is allowed. */
export type KnownEndpoint =
  | '/v1/documents/extract'
  | '/v1/documents/parse'
  | '/v1/documents/split'
  | '/v1/documents/classify'
  | '/v1/schemas/generate'
  | '/v1/edit/agent/fill'
  | '/v1/edit/templates/fill'
  | '/v1/edit/templates/generate'
  | '/v1/evals/extract/process'
  | '/v1/evals/split/process'
  | '/v1/evals/classify/process'
  | '/v1/evals/extract/extract'
  | '/v1/evals/extract/split';
// `string & {}` keeps the known names in editor completion while accepting any string.
export type Endpoint = KnownEndpoint | (string & {});

export type Metadata = Record<string, string>;

export interface JobError {
  code: string;
  message: string;
  details?: Record<string, unknown> | null;
}

export interface JobWarning {
  code: string;
  message: string;
  details?: Record<string, unknown> | null;
}

export interface JobResponse<TBody = unknown> {
  status_code: number;
  body: TBody;
}

/** What GET /v1/jobs/{id}/status answers: lifecycle fields only. */
export interface JobStatusView {
  id: string;
  object: 'job';
  status: JobStatus;
  endpoint: string;
  error: JobError | null;
  warnings: JobWarning[] | null;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  expires_at: number;
  organization_id: string;
  metadata: Metadata | null;
  /** The client asked for cancellation; a running job stays in_progress until its worker stops. */
  cancelled: boolean;
  attempt_count: number;
  last_attempt_at: number | null;
  last_failure_code: string | null;
}

/** The job object. `request` and `response` are null unless asked for (include_request / include_response). */
export interface Job<TRequest = Record<string, unknown>, TResponseBody = unknown> extends JobStatusView {
  request: TRequest | null;
  response: JobResponse<TResponseBody> | null;
  cloud_task_name: string | null;
  /** JSON pointer -> storage URI of each offloaded request artifact; null when none were offloaded. */
  request_gcs_paths: Record<string, string> | null;
}

export interface JobList {
  object: 'list';
  data: Job[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
  list_metadata: { before: string | null; after: string | null };
}

export const ATTEMPT_OUTCOMES = [
  'succeeded',
  'failed',
  'lease_expired',
  'cancelled',
  'released',
  'expired',
] as const;
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];

export interface JobAttempt {
  object: 'job.attempt';
  attempt: number;
  worker_id: string;
  started_at: number;
  finished_at: number | null;
  /** null while the attempt runs. */
  outcome: AttemptOutcome | null;
  error: JobError | null;
}

export interface JobAttemptList {
  object: 'list';
  data: JobAttempt[];
}

/** Body of POST /v1/jobs. */
export interface CreateJobParams {
  /** With or without the '/v1' prefix. */
  endpoint: Endpoint;
  request: Record<string, unknown>;
  /** At most 16 pairs; keys up to 64 characters, values up to 512. */
  metadata?: Metadata | null;
  max_attempts?: number;
}

/** Query of GET /v1/jobs. `metadata` is sent as the JSON string the server expects. */
export interface ListJobsParams {
  /** 1..100, default 20; at most 20 with include_response. */
  limit?: number;
  order?: 'asc' | 'desc';
  after?: string;
  before?: string;
  status?: JobStatus;
  endpoint?: Endpoint;
  metadata?: Metadata;
  /** YYYY-MM-DD, UTC, inclusive. */
  from_date?: string;
  /** YYYY-MM-DD, UTC, inclusive. */
  to_date?: string;
  include_request?: boolean;
  include_response?: boolean;
}

/** Body of POST /v1/worker/claim. */
export interface ClaimParams {
  worker_id: string;
  /** 1..100, default 1. */
  limit?: number;
  /** Only jobs for these endpoints ('/v1' prefix optional). Default: every endpoint. */
  endpoints?: string[];
  lease_seconds?: number;
  /** 0..30: with nothing runnable, wait this long for a job to be queued. */
  wait_seconds?: number;
}

export interface ClaimedJob {
  /** The job with its request fully restored. */
  job: Job;
  lease_token: string;
  lease_expires_at: number;
}

export interface ClaimResponse {
  object: 'list';
  data: ClaimedJob[];
}

export interface HeartbeatParams {
  lease_token: string;
  lease_seconds?: number;
}

export interface HeartbeatResponse {
  cancel_requested: boolean;
  lease_expires_at: number;
}

export interface CompleteParams {
  lease_token: string;
  /** status_code 100..599; the body is a JSON object (the server refuses anything else with 400). */
  response: JobResponse<Record<string, unknown>>;
  warnings?: JobWarning[];
}

export interface FailParams {
  lease_token: string;
  /** code: 1..100 characters; message up to 10,000. */
  error: JobError;
  /** true: queued again after a backoff while attempts remain; false: the job fails now. */
  retryable: boolean;
}

export interface LeaseParams {
  lease_token: string;
}

export const REPORT_TYPES = ['heartbeat', 'complete', 'fail', 'cancelled', 'release'] as const;
export type ReportType = (typeof REPORT_TYPES)[number];

/**
 * One report of POST /v1/worker/reports: the body of its single route (`.../{job_id}/{type}`)
 * with its `type` and `job_id`.
 */
export type WorkerReport =
  | ({ type: 'heartbeat'; job_id: string } & HeartbeatParams)
  | ({ type: 'complete'; job_id: string } & CompleteParams)
  | ({ type: 'fail'; job_id: string } & FailParams)
  | ({ type: 'cancelled' | 'release'; job_id: string } & LeaseParams);

/** Body of POST /v1/worker/reports: 1..100 reports, at most one per job. */
export interface ReportsParams {
  reports: WorkerReport[];
}

/** A report's answer, as its single route would have given it. */
export interface WorkerReportResult {
  /** null only when the report had none (a malformed report, refused alone). */
  job_id: string | null;
  type: string | null;
  /** 200, or the status of `error`. */
  status_code: number;
  /** With 200, for every type but heartbeat. */
  job: Job | null;
  /** With 200, for a heartbeat. */
  heartbeat: HeartbeatResponse | null;
  error: { code: string; message: string; details?: Record<string, unknown> } | null;
}

/** Answer of POST /v1/worker/reports: one result per report, in the reports' order. */
export interface ReportsResponse {
  object: 'list';
  data: WorkerReportResult[];
}

/** The body of every error answer. */
export interface ErrorBody {
  detail: { code: string; message: string; details?: Record<string, unknown> };
}
