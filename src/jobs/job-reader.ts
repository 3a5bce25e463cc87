import type { Kysely } from 'kysely';
import type { Database } from '../db/types.js';
import { jobNotFound } from '../errors.js';
import { type RestoreOptions, restoreDocuments } from '../storage/artifact-restorer.js';
import type { ArtifactRole } from '../storage/artifact-types.js';
import type { ObjectStore } from '../storage/object-store.js';
import { findJobArtifacts, findJobDetail, findJobLifecycle, type JobDetailRow } from './job-repository.js';
import type { JobStatusView, JobView } from './job-schemas.js';
import { toJobView, toStatusView } from './job-view.js';

export interface JobReaderDeps {
  db: Kysely<Database>;
  store: ObjectStore;
  restore: RestoreOptions;
}

export interface Includes {
  request: boolean;
  response: boolean;
}

export async function readJobStatus(
  db: Kysely<Database>,
  organizationId: string,
  jobId: string,
): Promise<JobStatusView> {
  const row = await findJobLifecycle(db, organizationId, jobId);
  if (!row) throw jobNotFound(jobId);
  return toStatusView(row);
}

/**
 * Builds the job object of a row, restoring the asked-for documents from object storage.
 * Storage trouble never throws here: it becomes null values and warnings.
 */
export async function presentJob(
  deps: JobReaderDeps,
  row: JobDetailRow,
  include: Includes,
): Promise<JobView> {
  const wantResponse = include.response && row.status === 'completed';
  const roles: ArtifactRole[] = [];
  // request_gcs_paths lists every offloaded part of the request (the whole-document one included):
  // without it there is nothing to look up.
  if (include.request && row.request != null && row.request_gcs_paths != null) roles.push('request');
  if (wantResponse && row.response != null) roles.push('response');
  const artifacts = await findJobArtifacts(deps.db, row.id, roles);

  const documents: Partial<Record<ArtifactRole, unknown>> = {};
  if (include.request) documents.request = row.request ?? null;
  if (wantResponse) documents.response = row.response ?? null;
  const restored = await restoreDocuments(deps.store, documents, artifacts, deps.restore);
  return toJobView(row, {
    request: restored.documents.request ?? null,
    response: restored.documents.response ?? null,
    warnings: restored.warnings,
  });
}

export async function readJob(deps: JobReaderDeps, organizationId: string, jobId: string, include: Includes) {
  const row = await findJobDetail(deps.db, organizationId, jobId, include);
  if (!row) throw jobNotFound(jobId);
  return presentJob(deps, row, include);
}
