import { JOB_FIELDS, JOB_STATUS_FIELDS } from '../domain/job-shape.js';
import type { JobRow } from './types.js';

/**
 * The columns behind the job object, derived from its schema: every field but `object` is a
 * column of the same name. The `satisfies` clauses are the check: a field added to the schema
 * without its column in `JobsTable` does not compile.
 */
type FieldColumn<F> = Exclude<F, 'object'>;
const PAYLOAD_COLUMNS = ['request', 'response'] as const;
type PayloadColumn = (typeof PAYLOAD_COLUMNS)[number];

/** The columns the status route answers from: the lifecycle fields, never the payloads. */
export const LIFECYCLE_COLUMNS = JOB_STATUS_FIELDS.filter(
  (field): field is FieldColumn<typeof field> => field !== 'object',
) satisfies readonly (keyof JobRow)[];

/** The columns of the job object apart from its payloads, which can be large. */
export const DETAIL_COLUMNS = JOB_FIELDS.filter(
  (field): field is Exclude<FieldColumn<typeof field>, PayloadColumn> =>
    field !== 'object' && !(PAYLOAD_COLUMNS as readonly string[]).includes(field),
) satisfies readonly (keyof JobRow)[];

export type JobLifecycleRow = Pick<JobRow, (typeof LIFECYCLE_COLUMNS)[number]>;
export type JobDetailRow = Pick<JobRow, (typeof DETAIL_COLUMNS)[number]> &
  Partial<Pick<JobRow, PayloadColumn>>;
