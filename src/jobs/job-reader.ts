import type { FastifyBaseLogger } from 'fastify';
import type { JobDetailRow } from '../db/job-columns.js';
import type { ArtifactRole } from '../domain/artifacts.js';
import { jobNotFound } from '../domain/errors.js';
import type { JobStatusView, JobView } from '../domain/job-shape.js';
import { restoreDocuments } from '../storage/artifact-restorer.js';
import type { JobContext } from './job-context.js';
import { findJobArtifacts, findJobDetail, findJobLifecycle } from './job-repository.js';
import { toJobView, toStatusView } from './job-view.js';

export interface Includes {
  request: boolean;
  response: boolean;
}

export async function readJobStatus(
  ctx: Pick<JobContext, 'db'>,
  organizationId: string,
  jobId: string,
): Promise<JobStatusView> {
  const row = await findJobLifecycle(ctx.db, organizationId, jobId);
  if (!row) throw jobNotFound(jobId);
  return toStatusView(row);
}

/** When an answer that starts now must have restored its artifacts: RESTORE_TIMEOUT_MS from now. */
export const restoreDeadline = (ctx: JobContext) => performance.now() + ctx.config.restoreTimeoutMs;

export interface PresentOptions {
  /** `performance.now()` time the restores end by (one per answer); default RESTORE_TIMEOUT_MS from now. */
  deadline?: number;
  /** The request's logger: each artifact that could not be restored is one warning there. */
  log?: Pick<FastifyBaseLogger, 'warn'>;
}

/**
 * Builds the job object of a row, restoring the asked-for documents from object storage by the
 * deadline (a list page or a claim shares one among its jobs). Storage trouble never throws
 * here: it becomes null values and warnings, in the answer and in the log.
 */
export async function presentJob(
  ctx: JobContext,
  row: JobDetailRow,
  include: Includes,
  options: PresentOptions = {},
): Promise<JobView> {
  const wantResponse = include.response && row.status === 'completed';
  const roles: ArtifactRole[] = [];
  // request_gcs_paths lists every offloaded part of the request (the whole-document one included):
  // without it there is nothing to look up.
  if (include.request && row.request != null && row.request_gcs_paths != null) roles.push('request');
  if (wantResponse && row.response != null) roles.push('response');
  const artifacts = await findJobArtifacts(ctx.db, row.id, roles);

  const documents: Partial<Record<ArtifactRole, unknown>> = {};
  if (include.request) documents.request = row.request ?? null;
  if (wantResponse) documents.response = row.response ?? null;
  const restored = await restoreDocuments(ctx.store, documents, artifacts, {
    concurrency: ctx.config.restoreConcurrency,
    timeoutMs: ctx.config.restoreTimeoutMs,
    deadline: options.deadline ?? restoreDeadline(ctx),
  });
  for (const warning of restored.warnings) {
    options.log?.warn({ job_id: row.id, ...warning.details }, warning.message);
  }
  return toJobView(row, {
    request: restored.documents.request ?? null,
    response: restored.documents.response ?? null,
    warnings: restored.warnings,
  });
}

export async function readJob(
  ctx: JobContext,
  organizationId: string,
  jobId: string,
  include: Includes,
  log?: PresentOptions['log'],
) {
  const row = await findJobDetail(ctx.db, organizationId, jobId, include);
  if (!row) throw jobNotFound(jobId);
  return presentJob(ctx, row, include, { log });
}
