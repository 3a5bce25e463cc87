import type { JobDetailRow, JobLifecycleRow } from './job-repository.js';
import type { JobStatusView, JobView, JobWarning } from './job-schemas.js';

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
const secondsOrNull = (d: Date | null) => (d === null ? null : seconds(d));

export function toStatusView(row: JobLifecycleRow): JobStatusView {
  return {
    id: row.id,
    object: 'job',
    status: row.status,
    endpoint: row.endpoint,
    error: row.error as JobStatusView['error'],
    warnings: row.warnings as JobWarning[] | null,
    created_at: seconds(row.created_at),
    started_at: secondsOrNull(row.started_at),
    completed_at: secondsOrNull(row.completed_at),
    expires_at: seconds(row.expires_at),
    organization_id: row.organization_id,
    metadata: row.metadata,
    cancelled: row.cancelled,
    attempt_count: row.attempt_count,
    last_attempt_at: secondsOrNull(row.last_attempt_at),
    last_failure_code: row.last_failure_code,
  };
}

/** The full job object; `request`/`response` are the restored documents (or null). */
export function toJobView(
  row: JobDetailRow,
  restored: { request: unknown; response: unknown; warnings: readonly JobWarning[] },
): JobView {
  const status = toStatusView(row);
  const warnings = [...(status.warnings ?? []), ...restored.warnings];
  return {
    ...status,
    warnings: warnings.length > 0 ? warnings : null,
    request: restored.request ?? null,
    response: (restored.response ?? null) as JobView['response'],
    cloud_task_name: row.cloud_task_name,
    request_gcs_paths: row.request_gcs_paths,
  };
}
