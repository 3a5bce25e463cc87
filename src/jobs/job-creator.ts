import type { JobDetailRow } from '../db/job-columns.js';
import { AppError } from '../domain/errors.js';
import { newJobId } from '../domain/ids.js';
import { canonicalJson, sha256Hex } from '../lib/canonical-json.js';
import { insertJobWithArtifacts } from '../lifecycle/client-transitions-repository.js';
import { writeWithOffload } from '../storage/offloaded-write.js';
import type { JobContext } from './job-context.js';
import { findJobByIdempotencyKey } from './job-repository.js';

export interface NewJob {
  organizationId: string;
  /** Already normalised to its `/v1/...` form. */
  endpoint: string;
  request: Record<string, unknown>;
  metadata: Record<string, string> | null;
  idempotencyKey?: string;
  maxAttempts?: number;
}

function replayOrConflict(existing: { request_hash: string | null } & JobDetailRow, requestHash: string) {
  if (existing.request_hash !== requestHash) {
    throw new AppError(
      'idempotency_conflict',
      'This Idempotency-Key was already used with a different request body.',
      { job_id: existing.id },
    );
  }
  return { row: existing, created: false };
}

/**
 * Creates a queued job: offloads the large parts of the request, then inserts the row and its
 * artifacts (in one transaction when there are artifact rows). Objects written for a job that is
 * not created are deleted. With an idempotency key, a second create with the same body answers
 * the first job.
 */
export async function createJob(
  ctx: JobContext,
  input: NewJob,
): Promise<{ row: JobDetailRow; created: boolean }> {
  const { db, config } = ctx;
  // Only a create with an Idempotency-Key is ever compared with another: hashing a large body costs.
  const requestHash = input.idempotencyKey
    ? sha256Hex(canonicalJson({ endpoint: input.endpoint, request: input.request, metadata: input.metadata }))
    : null;
  if (input.idempotencyKey) {
    const existing = await findJobByIdempotencyKey(db, input.organizationId, input.idempotencyKey);
    if (existing) return replayOrConflict(existing, requestHash as string);
  }

  const id = newJobId();
  const inserted = await writeWithOffload(
    ctx,
    input.request,
    {
      jobId: id,
      keyPrefix: `${input.organizationId}/${id}`,
      role: 'request',
      settings: config,
      unavailable: { message: 'Object storage is unavailable; the job was not created. Try again.' },
    },
    ({ stored, artifacts }) => {
      const now = ctx.clock.now();
      const row = {
        id,
        organization_id: input.organizationId,
        status: 'queued' as const,
        endpoint: input.endpoint,
        request: JSON.stringify(stored),
        metadata: input.metadata === null ? null : JSON.stringify(input.metadata),
        request_gcs_paths:
          artifacts.length > 0
            ? JSON.stringify(Object.fromEntries(artifacts.map((a) => [a.pointer, a.storageUri])))
            : null,
        max_attempts: input.maxAttempts ?? config.defaultMaxAttempts,
        created_at: now,
        updated_at: now,
        run_after: now,
        expires_at: new Date(now.getTime() + config.jobRetentionSeconds * 1000),
        idempotency_key: input.idempotencyKey ?? null,
        request_hash: requestHash,
      };
      // With no artifact rows the insert is one statement and needs no transaction of its own.
      if (artifacts.length === 0) return insertJobWithArtifacts(db, row, artifacts);
      return db.transaction().execute((trx) => insertJobWithArtifacts(trx, row, artifacts));
    },
  );
  if (inserted) return { row: inserted, created: true };

  // A concurrent create with the same idempotency key won the insert.
  const winner = await findJobByIdempotencyKey(db, input.organizationId, input.idempotencyKey as string);
  if (!winner) throw new Error('idempotent insert lost to a job that no longer exists');
  return replayOrConflict(winner, requestHash as string);
}
