import { JobsApiError } from './errors.js';
import { describeHandlerError } from './handler-errors.js';
import { toJobResponse } from './handler-result.js';
import type { HeldJob } from './held-jobs.js';
import type { JobResponse } from './types.js';
import type { LeaseReports } from './worker-api.js';

/** How a handler settled. */
export type HandlerOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** The fields of the 'job finished' log line. */
export type ReportLine = Record<string, unknown>;

/**
 * Sends a handler's outcome under the job's lease: complete, fail, or cancelled when the client
 * asked to cancel and the handler then threw. Throws when the report itself could not be sent.
 */
export async function reportOutcome(
  reports: LeaseReports,
  entry: HeldJob,
  outcome: HandlerOutcome,
): Promise<ReportLine> {
  const { job } = entry;
  const fields = { job_id: job.id, endpoint: job.endpoint, attempt: job.attempt_count };
  if (outcome.ok) return { ...fields, ...(await reportResult(reports, entry, outcome.value)) };
  if (entry.cancelRequested) {
    await reports.cancelled(job.id, { lease_token: entry.leaseToken });
    return { ...fields, outcome: 'cancelled' };
  }
  const failure = describeHandlerError(outcome.error);
  const after = await reports.fail(job.id, { lease_token: entry.leaseToken, ...failure });
  return {
    ...fields,
    outcome: after.status === 'queued' ? 'failed, will retry' : after.status,
    error_code: failure.error.code,
  };
}

async function reportResult(reports: LeaseReports, entry: HeldJob, value: unknown): Promise<ReportLine> {
  const { job, leaseToken } = entry;
  const { response, warnings } = toJobResponse(value);
  try {
    // Sent as the handler made it: a body that is not an object is the server's to refuse (400).
    await reports.complete(job.id, {
      lease_token: leaseToken,
      response: response as JobResponse<Record<string, unknown>>,
      warnings,
    });
    return { outcome: 'completed', status_code: response.status_code };
  } catch (error) {
    // The server refused the result itself (a body that is not an object, an invalid status
    // code, too large): retrying the same handler would most likely produce the same, so the job
    // fails now.
    if (!(error instanceof JobsApiError) || error.status >= 500 || [404, 409].includes(error.status)) {
      throw error;
    }
    await reports.fail(job.id, {
      lease_token: leaseToken,
      error: {
        code: 'invalid_handler_result',
        message: `The server refused the handler's result: ${error.message}`,
        details: { status: error.status, code: error.code },
      },
      retryable: false,
    });
    return { outcome: 'failed', error_code: 'invalid_handler_result' };
  }
}
