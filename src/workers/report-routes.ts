import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Ajv, type ValidateFunction } from 'ajv';
import type { AppError } from '../domain/errors.js';
import { errorResponses } from '../http/schema-helpers.js';
import { validationError } from '../http/validation-errors.js';
import type { JobContext } from '../jobs/job-context.js';
import { applyReports, type Report, type ReportResult } from './report-batch.js';
import {
  type ReportItem,
  type ReportResultView,
  ReportsEnvelopeSchema,
  ReportsResponseSchema,
  type ReportType,
  ReportTypeSchema,
  reportItemSchemas,
  reportsBodySchema,
} from './report-schemas.js';

/** What a report item asks, in the terms of report-batch.ts. */
function toReport(item: ReportItem, organizationId: string | null, defaultLeaseSeconds: number): Report {
  const lease = { organizationId, jobId: item.job_id, leaseToken: item.lease_token.toLowerCase() };
  switch (item.type) {
    case 'heartbeat':
      return { type: 'heartbeat', lease, leaseSeconds: item.lease_seconds ?? defaultLeaseSeconds };
    case 'complete':
      return { type: 'complete', lease, response: item.response, warnings: item.warnings };
    case 'fail':
      return { type: 'fail', lease, error: item.error, retryable: item.retryable };
    default:
      return { type: item.type, lease };
  }
}

function toView(item: Record<string, unknown>, result: ReportResult): ReportResultView {
  const job_id = typeof item.job_id === 'string' ? item.job_id : null;
  const type = typeof item.type === 'string' ? item.type : null;
  if (!result.ok) {
    const { code, message, details, statusCode } = result.error;
    const error = details ? { code, message, details } : { code, message };
    return { job_id, type, status_code: statusCode, job: null, heartbeat: null, error };
  }
  return {
    job_id,
    type,
    status_code: 200,
    job: result.job ?? null,
    heartbeat: result.heartbeat ?? null,
    error: null,
  };
}

/**
 * POST /v1/worker/reports: up to 100 reports of any kinds in one request, each kind applied in
 * one statement. Each report is validated and answered on its own, exactly as its single route
 * would: a malformed, stale or foreign one fails alone.
 */
export const reportRoutes: FastifyPluginAsyncTypebox<{ ctx: JobContext }> = async (app, { ctx }) => {
  const { leaseSeconds, maxLeaseSeconds } = ctx.config;
  const items = reportItemSchemas({ maxLeaseSeconds, defaultLeaseSeconds: leaseSeconds });
  const ajv = new Ajv({
    allErrors: false,
    strict: false,
    verbose: true,
    coerceTypes: false,
    useDefaults: true,
  });
  const validators = Object.fromEntries(
    Object.entries(items).map(([type, schema]) => [type, ajv.compile(schema)]),
  ) as Record<ReportType, ValidateFunction>;
  const typeValidator = ajv.compile(ReportTypeSchema);
  const envelope = ajv.compile(ReportsEnvelopeSchema);

  const check = (raw: unknown): { ok: true; item: ReportItem } | { ok: false; error: AppError } => {
    const type = (raw as { type?: unknown }).type;
    const validate =
      typeof type === 'string' && type in validators ? validators[type as ReportType] : typeValidator;
    if (validate(raw) && validate !== typeValidator) return { ok: true, item: raw as ReportItem };
    return { ok: false, error: validationError(validate.errors ?? [], 'report') };
  };

  app.post(
    '/reports',
    {
      schema: {
        summary: 'Report on many leases at once',
        description:
          'Heartbeats, completions, failures, cancellation acknowledgements and releases of up to 100 jobs, in any mix, one report per job. Each kind is applied in one statement. Every report is answered in order as its single route would answer it: status_code 200 with the job (or the heartbeat answer), or the error of that route (400, 404, 409, 422, 503), which changes nothing for that job and nothing for the others.',
        tags: ['worker'],
        body: reportsBodySchema(items),
        response: { 200: ReportsResponseSchema, ...errorResponses(400, 401, 403, 413, 415, 503) },
      },
      // Only the list is checked here: each report is checked on its own, below.
      validatorCompiler: ({ httpPart }) => (httpPart === 'body' ? envelope : () => true),
    },
    async (request) => {
      const raw = (request.body as { reports: Record<string, unknown>[] }).reports;
      const checked = raw.map(check);
      const valid = checked.flatMap((c, index) => (c.ok ? [{ index, item: c.item }] : []));
      const applied = await applyReports(
        ctx,
        valid.map(({ item }) => toReport(item, request.auth.organizationId, leaseSeconds)),
      );
      const results: ReportResult[] = new Array(raw.length);
      checked.forEach((c, index) => {
        if (!c.ok) results[index] = c;
      });
      valid.forEach(({ index }, i) => {
        results[index] = applied[i];
      });
      return { object: 'list' as const, data: raw.map((item, i) => toView(item, results[i])) };
    },
  );
};
