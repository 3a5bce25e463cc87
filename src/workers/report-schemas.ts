import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { JobIdSchema, JobSchema } from '../domain/job-shape.js';
import { Nullable, StringEnum } from '../domain/schema-types.js';
import { ErrorDetail } from '../http/schema-helpers.js';
import {
  CompleteBody,
  FailBody,
  HeartbeatResponseSchema,
  LeaseTokenBody,
  leaseBodySchemas,
} from './worker-schemas.js';

/** Reports per request of POST /v1/worker/reports. */
export const MAX_REPORTS = 100;

export const REPORT_TYPES = ['heartbeat', 'complete', 'fail', 'cancelled', 'release'] as const;
export type ReportType = (typeof REPORT_TYPES)[number];

const item = <K extends ReportType, T extends TSchema>(type: K, body: T, description: string) =>
  Type.Composite([Type.Object({ type: Type.Literal(type), job_id: JobIdSchema }), body], { description });

/**
 * One report of a batch: the body of its single route, with its `type` and `job_id`. Each is
 * validated alone (a malformed report is refused alone, the others apply), so the batch's own
 * schema only checks that it is a list of up to MAX_REPORTS objects.
 */
export function reportItemSchemas(limits: { maxLeaseSeconds: number; defaultLeaseSeconds: number }) {
  const { HeartbeatBody } = leaseBodySchemas(limits);
  return {
    heartbeat: item('heartbeat', HeartbeatBody, 'As POST /v1/worker/jobs/{job_id}/heartbeat.'),
    complete: item('complete', CompleteBody, 'As POST /v1/worker/jobs/{job_id}/complete.'),
    fail: item('fail', FailBody, 'As POST /v1/worker/jobs/{job_id}/fail.'),
    cancelled: item('cancelled', LeaseTokenBody, 'As POST /v1/worker/jobs/{job_id}/cancelled.'),
    release: item('release', LeaseTokenBody, 'As POST /v1/worker/jobs/{job_id}/release.'),
  } satisfies Record<ReportType, TSchema>;
}

export type ReportItems = ReturnType<typeof reportItemSchemas>;
export type ReportItem = { [K in ReportType]: Static<ReportItems[K]> }[ReportType];

/** What the documentation shows; what is validated is only the outer list (see reportItemSchemas). */
export const reportsBodySchema = (items: ReportItems) =>
  Type.Object(
    {
      reports: Type.Array(Type.Union(Object.values(items)), {
        minItems: 1,
        maxItems: MAX_REPORTS,
        description: `1 to ${MAX_REPORTS} reports, at most one per job, of any kinds.`,
      }),
    },
    { additionalProperties: false },
  );

/** The outer check of the batch: a list of objects; each report is checked on its own. */
export const ReportsEnvelopeSchema = Type.Object(
  { reports: Type.Array(Type.Object({}), { minItems: 1, maxItems: MAX_REPORTS }) },
  { additionalProperties: false },
);

/** A report's type when it has none of the known ones, for its own 400. */
export const ReportTypeSchema = Type.Object({ type: StringEnum(REPORT_TYPES) });

export const ReportResultSchema = Type.Object({
  job_id: Nullable(Type.String()),
  type: Nullable(Type.String()),
  status_code: Type.Integer({
    description: 'What the single route would have answered: 200, or the status of `error`.',
  }),
  job: Nullable(JobSchema),
  heartbeat: Nullable(HeartbeatResponseSchema),
  error: Nullable(ErrorDetail),
});

export const ReportsResponseSchema = Type.Object(
  { object: Type.Literal('list'), data: Type.Array(ReportResultSchema) },
  { description: "One result per report, in the reports' order." },
);

export type ReportResultView = Static<typeof ReportResultSchema>;
