import type { ColumnType, Generated, Insertable, Kysely, Selectable, Transaction, Updateable } from 'kysely';
import type { ApiKeyScope } from '../domain/api-key-scopes.js';
import type { ArtifactKind, ArtifactRole } from '../domain/artifacts.js';
import type { AttemptOutcome } from '../domain/attempt-outcomes.js';
import type { Problem } from '../domain/job-shape.js';
import type { JobStatus } from '../domain/job-statuses.js';

/** jsonb columns: written as serialisable values, read back parsed by pg. */
type Json<T> = ColumnType<T, T | string, T | string>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface OrganizationsTable {
  id: string;
  name: string;
  /** At most this many of its jobs in progress at once; null: no limit. */
  max_in_flight: ColumnType<number | null, number | null | undefined, number | null>;
  created_at: ColumnType<Date, Date | string | undefined, never>;
}

export interface ApiKeysTable {
  id: string;
  /** Null for a fleet key, which serves every organization. */
  organization_id: string | null;
  name: string | null;
  scope: ApiKeyScope;
  key_hash: string;
  display_prefix: string;
  created_at: ColumnType<Date, Date | string | undefined, never>;
  revoked_at: Timestamp | null;
}

export interface JobsTable {
  id: string;
  organization_id: string;
  status: JobStatus;
  endpoint: string;
  request: Json<unknown> | null;
  response: Json<unknown> | null;
  error: Json<Problem> | null;
  warnings: Json<Problem[]> | null;
  metadata: Json<Record<string, string>> | null;
  request_gcs_paths: Json<Record<string, string>> | null;
  cloud_task_name: string | null;
  cancelled: ColumnType<boolean, boolean | undefined, boolean>;
  attempt_count: ColumnType<number, number | undefined, number>;
  max_attempts: ColumnType<number, number | undefined, number>;
  last_attempt_at: Timestamp | null;
  last_failure_code: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  started_at: Timestamp | null;
  completed_at: Timestamp | null;
  expires_at: Timestamp;
  run_after: Timestamp;
  lease_owner: string | null;
  lease_token: string | null;
  lease_expires_at: Timestamp | null;
  idempotency_key: string | null;
  request_hash: string | null;
}

export interface JobArtifactsTable {
  id: Generated<string>;
  job_id: string;
  role: ArtifactRole;
  pointer: string;
  kind: ArtifactKind;
  storage_uri: string;
  /** bigint: pg returns it as a string. */
  byte_size: ColumnType<string, number, never>;
  sha256: string;
  content_type: string;
  created_at: ColumnType<Date, Date | string | undefined, never>;
}

export interface JobAttemptsTable {
  job_id: string;
  attempt: number;
  worker_id: string;
  lease_token: string;
  started_at: Timestamp;
  finished_at: Timestamp | null;
  /** Null while the attempt runs. */
  outcome: AttemptOutcome | null;
  error: Json<Problem> | null;
}

export interface StorageDeletionsTable {
  id: Generated<string>;
  storage_uri: string;
  job_id: string | null;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: ColumnType<Date, Date | string | undefined, Date | string>;
  last_error: string | null;
  created_at: ColumnType<Date, Date | string | undefined, never>;
}

/** An object about to be written: deleted after `deadline` unless a commit claimed it first. */
export interface StorageIntentsTable {
  storage_uri: string;
  job_id: string;
  deadline: Timestamp;
  created_at: ColumnType<Date, Date | string | undefined, never>;
}

export interface Database {
  organizations: OrganizationsTable;
  api_keys: ApiKeysTable;
  jobs: JobsTable;
  job_artifacts: JobArtifactsTable;
  storage_deletions: StorageDeletionsTable;
  storage_intents: StorageIntentsTable;
  job_attempts: JobAttemptsTable;
}

export type JobRow = Selectable<JobsTable>;
export type NewJobRow = Insertable<JobsTable>;
export type JobRowUpdate = Updateable<JobsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type JobArtifactRow = Selectable<JobArtifactsTable>;
export type NewJobArtifactRow = Insertable<JobArtifactsTable>;
export type JobAttemptRow = Selectable<JobAttemptsTable>;

/** What a repository function takes: the pool, or the caller's transaction. */
export type Db = Kysely<Database> | Transaction<Database>;
