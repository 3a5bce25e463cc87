import type { JobDetailRow, JobLifecycleRow } from '../db/job-columns.js';
import {
  JOB_FIELDS,
  JOB_STATUS_FIELDS,
  type JobStatusView,
  type JobView,
  type Problem,
} from '../domain/job-shape.js';

/**
 * Rows to job objects, field by field in the schema's order: every field is the column of the
 * same name, timestamps (Date) become integer Unix seconds, `object` is 'job'. The type check at
 * the end keeps the columns' types and the fields' types in step.
 */

const toWire = (value: unknown) => (value instanceof Date ? Math.floor(value.getTime() / 1000) : value);

export function toStatusView(row: JobLifecycleRow): JobStatusView {
  const view: Record<string, unknown> = {};
  for (const field of JOB_STATUS_FIELDS) view[field] = field === 'object' ? 'job' : toWire(row[field]);
  return view as JobStatusView;
}

/** The full job object; `request`/`response` are the restored documents (or null). */
export function toJobView(
  row: JobDetailRow,
  restored: { request: unknown; response: unknown; warnings: readonly Problem[] },
): JobView {
  const warnings = [...(row.warnings ?? []), ...restored.warnings];
  const view: Record<string, unknown> = {};
  for (const field of JOB_FIELDS) {
    if (field === 'object') view.object = 'job';
    else if (field === 'warnings') view.warnings = warnings.length > 0 ? warnings : null;
    else if (field === 'request' || field === 'response') view[field] = restored[field] ?? null;
    else view[field] = toWire(row[field]);
  }
  return view as JobView;
}

/** The job object without its payloads: what writes answer. */
export const lightweightView = (row: JobDetailRow) =>
  toJobView(row, { request: null, response: null, warnings: [] });

// Compile-time check: each column, as toWire writes it, has the type of its field.
type Wire<T> = T extends Date ? number : T;
type Fields<Row, View> = { [K in keyof Row & keyof View]: Wire<Row[K]> extends View[K] ? true : K };
type Mismatched<T> = { [K in keyof T]: T[K] extends true ? never : T[K] }[keyof T];
const columnTypesMatch: [Mismatched<Fields<JobLifecycleRow, JobStatusView>>] extends [never] ? true : never =
  true;
const detailTypesMatch: [Mismatched<Fields<Omit<JobDetailRow, 'request' | 'response'>, JobView>>] extends [
  never,
]
  ? true
  : never = true;
void columnTypesMatch;
void detailTypesMatch;
