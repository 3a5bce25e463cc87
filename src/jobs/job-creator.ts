import type { Kysely, Transaction } from 'kysely';
import { canonicalJson, sha256Hex } from '../canonical-json.js';
import type { Config } from '../config.js';
import type { Database } from '../db/types.js';
import { AppError } from '../errors.js';
import { newJobId } from '../ids.js';
import { OffloadError, offloadDocument } from '../storage/artifact-offloader.js';
import { discardObjects } from '../storage/discard-objects.js';
import type { ObjectStore } from '../storage/object-store.js';
import { findJobByIdempotencyKey, insertJobWithArtifacts, type JobDetailRow } from './job-repository.js';

export interface JobCreatorDeps {
  db: Kysely<Database>;
  store: ObjectStore;
  offload: { dataUrlThreshold: number; documentLimit: number; concurrency: number };
  retentionSeconds: number;
  defaultMaxAttempts: number;
  now: () => Date;
}

/** The creation settings a configuration implies. */
export function jobCreatorDeps(
  config: Readonly<Config>,
  parts: { db: Kysely<Database>; store: ObjectStore; now: () => Date },
): JobCreatorDeps {
  return {
    ...parts,
    offload: {
      dataUrlThreshold: config.offloadThresholdBytes,
      documentLimit: config.inlineDocumentLimitBytes,
      concurrency: config.restoreConcurrency,
    },
    retentionSeconds: config.jobRetentionSeconds,
    defaultMaxAttempts: config.defaultMaxAttempts,
  };
}

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
 * artifacts in one transaction. Objects written for a job that is not created are deleted.
 * With an idempotency key, a second create with the same body answers the first job.
 */
export async function createJob(
  deps: JobCreatorDeps,
  input: NewJob,
): Promise<{ row: JobDetailRow; created: boolean }> {
  // Only a create with an Idempotency-Key is ever compared with another: hashing a large body costs.
  const requestHash = input.idempotencyKey
    ? sha256Hex(canonicalJson({ endpoint: input.endpoint, request: input.request, metadata: input.metadata }))
    : null;
  if (input.idempotencyKey) {
    const existing = await findJobByIdempotencyKey(deps.db, input.organizationId, input.idempotencyKey);
    if (existing) return replayOrConflict(existing, requestHash as string);
  }

  const id = newJobId();
  let offloaded: Awaited<ReturnType<typeof offloadDocument>>;
  try {
    offloaded = await offloadDocument(deps.store, input.request, {
      keyPrefix: `${input.organizationId}/${id}`,
      role: 'request',
      dataUrlThreshold: deps.offload.dataUrlThreshold,
      documentLimit: deps.offload.documentLimit,
      concurrency: deps.offload.concurrency,
    });
  } catch (error) {
    if (!(error instanceof OffloadError)) throw error;
    await discardObjects(deps.db, deps.store, error.written, id);
    throw error.cause;
  }
  const { stored, artifacts } = offloaded;
  const now = deps.now();
  let inserted: JobDetailRow | undefined;
  try {
    // With no artifact rows the insert is one statement and needs no transaction of its own.
    const write = (f: (db: Kysely<Database> | Transaction<Database>) => Promise<JobDetailRow | undefined>) =>
      artifacts.length === 0 ? f(deps.db) : deps.db.transaction().execute(f);
    inserted = await write((trx) =>
      insertJobWithArtifacts(
        trx,
        {
          id,
          organization_id: input.organizationId,
          status: 'queued',
          endpoint: input.endpoint,
          request: JSON.stringify(stored),
          metadata: input.metadata === null ? null : JSON.stringify(input.metadata),
          request_gcs_paths:
            artifacts.length > 0
              ? JSON.stringify(Object.fromEntries(artifacts.map((a) => [a.pointer, a.storageUri])))
              : null,
          max_attempts: input.maxAttempts ?? deps.defaultMaxAttempts,
          created_at: now,
          updated_at: now,
          run_after: now,
          expires_at: new Date(now.getTime() + deps.retentionSeconds * 1000),
          idempotency_key: input.idempotencyKey ?? null,
          request_hash: requestHash,
        },
        artifacts,
      ),
    );
  } catch (error) {
    await discardObjects(deps.db, deps.store, artifacts, id);
    throw error;
  }
  if (inserted) return { row: inserted, created: true };

  // A concurrent create with the same idempotency key won the insert.
  await discardObjects(deps.db, deps.store, artifacts, id);
  const winner = await findJobByIdempotencyKey(deps.db, input.organizationId, input.idempotencyKey as string);
  if (!winner) throw new Error('idempotent insert lost to a job that no longer exists');
  return replayOrConflict(winner, requestHash as string);
}
