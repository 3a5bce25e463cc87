/**
 * The SDK's hand-written types (sdk/src/types.ts, no dependency on the server) checked against
 * the server's schemas, at compile time: `npm run typecheck` fails when a field is added, removed
 * or retyped on one side only. Nothing here runs.
 */
import type { Static } from '@sinclair/typebox';
import type * as sdk from '../../sdk/src/index.js';
import type { ATTEMPT_OUTCOMES } from '../../src/domain/attempt-outcomes.js';
import type { JobStatusView, JobView, Problem } from '../../src/domain/job-shape.js';
import type { JOB_STATUSES, TERMINAL_STATUSES } from '../../src/domain/job-statuses.js';
import type { JobListView } from '../../src/jobs/job-list-schemas.js';
import type { JobAttemptView } from '../../src/jobs/job-schemas.js';
import type { CreateJobBody } from '../../src/jobs/job-write-schemas.js';
import type {
  REPORT_TYPES,
  ReportItem,
  ReportResultView,
  ReportsResponseSchema,
  ReportType,
  reportsBodySchema,
} from '../../src/workers/report-schemas.js';
import type {
  ClaimBody,
  ClaimedJobSchema,
  ClaimResponseSchema,
  CompleteInput,
  FailInput,
  HeartbeatBody,
  HeartbeatResponseSchema,
} from '../../src/workers/worker-schemas.js';

/** Exactly the same type: every field, its optionality and its type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Each side accepts the other's values (for the SDK's friendlier spellings of the same thing). */
type Compatible<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Expect<T extends true> = T;

/** The SDK's job with the server's open payload types (the SDK lets a caller narrow them). */
type SdkJob = sdk.Job<unknown, unknown>;

export type SdkTypesMatchTheServer = [
  Expect<Equal<sdk.JobStatusView, JobStatusView>>,
  Expect<Compatible<SdkJob, JobView>>,
  Expect<Equal<keyof SdkJob, keyof JobView>>,
  Expect<Equal<sdk.JobError, Problem>>,
  Expect<Equal<sdk.JobWarning, Problem>>,
  Expect<Compatible<Omit<sdk.JobList, 'data'> & { data: SdkJob[] }, JobListView>>,
  Expect<Equal<keyof sdk.JobList, keyof JobListView>>,
  Expect<Compatible<sdk.JobAttempt, JobAttemptView>>,
  Expect<Equal<keyof sdk.JobAttempt, keyof JobAttemptView>>,
  Expect<Equal<sdk.JobStatus, (typeof JOB_STATUSES)[number]>>,
  Expect<Equal<sdk.TerminalJobStatus, (typeof TERMINAL_STATUSES)[number]>>,
  Expect<Equal<sdk.AttemptOutcome, (typeof ATTEMPT_OUTCOMES)[number]>>,
  Expect<Compatible<sdk.CreateJobParams, CreateJobBody>>,
  Expect<Compatible<sdk.ClaimParams, ClaimBody>>,
  // A claimed job's request is always an object: the SDK says so, the schema leaves it open.
  Expect<Equal<keyof sdk.ClaimResponse, keyof Static<typeof ClaimResponseSchema>>>,
  Expect<Equal<keyof sdk.ClaimedJob, keyof Static<typeof ClaimedJobSchema>>>,
  Expect<Compatible<Omit<sdk.ClaimedJob, 'job'> & { job: SdkJob }, Static<typeof ClaimedJobSchema>>>,
  Expect<Compatible<sdk.HeartbeatParams, HeartbeatBody>>,
  Expect<Equal<sdk.HeartbeatResponse, Static<typeof HeartbeatResponseSchema>>>,
  Expect<Compatible<sdk.CompleteParams, CompleteInput>>,
  Expect<Compatible<sdk.FailParams, FailInput>>,
  // POST /v1/worker/reports: each report is the body of its single route with its type and job_id.
  Expect<Equal<sdk.ReportType, ReportType>>,
  Expect<Compatible<sdk.WorkerReport, ReportItem>>,
  Expect<Compatible<sdk.ReportsParams, Static<ReturnType<typeof reportsBodySchema>>>>,
  Expect<Equal<keyof sdk.WorkerReportResult, keyof ReportResultView>>,
  Expect<Compatible<Omit<sdk.WorkerReportResult, 'job'> & { job: SdkJob | null }, ReportResultView>>,
  Expect<Equal<keyof sdk.ReportsResponse, keyof Static<typeof ReportsResponseSchema>>>,
];

// The SDK's status lists are values too: the same members in the same order.
export const statusListsMatch: Expect<Equal<typeof sdk.JOB_STATUSES, typeof JOB_STATUSES>> = true;
export const terminalListsMatch: Expect<Equal<typeof sdk.TERMINAL_JOB_STATUSES, typeof TERMINAL_STATUSES>> =
  true;
export const reportTypeListsMatch: Expect<Equal<typeof sdk.REPORT_TYPES, typeof REPORT_TYPES>> = true;
export const outcomeListsMatch: Expect<Equal<typeof sdk.ATTEMPT_OUTCOMES, typeof ATTEMPT_OUTCOMES>> = true;
