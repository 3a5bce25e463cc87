import type { Kysely } from 'kysely';
import { keepsConnection } from '../db/database-errors.js';
import type { Database } from '../db/types.js';
import type { Clock } from '../domain/clock.js';
import { AppError } from '../domain/errors.js';
import {
  OffloadError,
  type OffloadOptions,
  type OffloadResult,
  offloadDocument,
  type PlannedWrites,
} from './artifact-offloader.js';
import { findInvalidDataUrl } from './data-urls.js';
import { discardObjects, queueDeletions } from './discard-objects.js';
import { type ObjectStore, StorageError } from './object-store.js';
import { recordStorageIntents } from './storage-intent-repository.js';

export interface OffloadedWriteOptions extends OffloadOptions {
  /** The job the objects belong to: named in their intents and in the deletion queue. */
  jobId: string;
  /** The 503 a storage failure becomes: what the client is told was left unchanged. */
  unavailable: { message: string; details?: Record<string, unknown> };
}

/**
 * How long an intent outlives the longest its offload can take: time for an upload that storage
 * completes after the cut, for the commit (a connection, then DATABASE_STATEMENT_TIMEOUT_MS), and
 * for clocks of replicas that disagree. No write starts later than half of it before the deadline
 * (`writeBy`), so when the sweeper deletes an unclaimed object no upload of it can still land.
 */
export const INTENT_MARGIN_MS = 300_000;

/**
 * Record, store, then write the row, then clean up: the large parts of `document` go to object
 * storage, and `write` records the stored form in the database. Before the first upload, one
 * statement records an intent for every object the offload may write (`storage_intents`, with a
 * deadline past the longest the offload can take); `write` must claim them in the statement or
 * transaction that makes the objects live (lifecycle/). Whatever happens next — the process dies,
 * an upload lands after its timeout, the write fails or loses a race — an object no row owns is
 * deleted: at once when the write is known not to have happened, else by the expiry sweeper once
 * its intent's deadline has passed.
 *
 * When the offload fails part-way, when `write` throws an error that says it did not happen, or
 * when it answers undefined (another create won the idempotency key, the lease was lost), every
 * object written is deleted again, or queued for deletion when storage refuses. A storage failure
 * while offloading is a 503 (`options.unavailable`), with nothing written; a data URL that is not
 * base64 is a 422 naming its JSON pointer, before anything is written.
 *
 * Each write has STORAGE_WRITE_TIMEOUT_MS. When one timed out, storage is not asked again: the
 * objects written are queued for the expiry sweeper, and the writes that were cut (they may still
 * be stored after the cut) or that failed keep their intents until the deadline, so the 503 comes
 * at the timeout, not a second one later.
 */
type Deps = { db: Kysely<Database>; store: ObjectStore; clock: Clock };

/**
 * The first half of writeWithOffload: validate, record the intents, offload. Objects of an offload
 * that failed are settled here (deleted, or left to their intents); a storage failure is a 503
 * (`options.unavailable`), a broken data URL a 422.
 */
export async function offloadForWrite(
  deps: Deps,
  document: unknown,
  options: OffloadedWriteOptions,
): Promise<OffloadResult> {
  const broken = findInvalidDataUrl(document);
  if (broken !== undefined) {
    throw new AppError(
      'unprocessable_entity',
      `Invalid ${options.role}: the data URL at '${broken}' is not valid base64.`,
      { pointer: broken },
    );
  }
  const { jobId } = options;
  const timeoutMs = options.settings.storageWriteTimeoutMs;
  let planned: readonly string[] = [];
  const beforeWrites = async ({ uris, maxDurationMs }: PlannedWrites) => {
    const writeBy = performance.now() + maxDurationMs + INTENT_MARGIN_MS / 2;
    const deadline = new Date(deps.clock.now().getTime() + maxDurationMs + INTENT_MARGIN_MS);
    await recordStorageIntents(deps.db, jobId, uris, deadline);
    planned = uris;
    return { writeBy };
  };
  try {
    return await offloadDocument(deps.store, document, { ...options, beforeWrites });
  } catch (error) {
    if (!(error instanceof OffloadError)) throw error;
    const attempted = new Set([...error.written, ...error.cut, ...error.failed].map((o) => o.storageUri));
    const untouched = planned.filter((uri) => !attempted.has(uri));
    if (error.cut.length > 0) await queueDeletions(deps.db, error.written, { jobId, untouched });
    else await discardObjects(deps.db, deps.store, error.written, { jobId, timeoutMs, untouched });
    if (!(error.cause instanceof StorageError)) throw error.cause;
    throw new AppError('service_unavailable', options.unavailable.message, options.unavailable.details, {
      cause: error.cause,
    });
  }
}

/**
 * The second half: after the write that was to make the objects live. `written` false (the write
 * did not happen: another create won, the lease was lost) or an error that says it did not happen
 * deletes them now. An error whose outcome is unknown (the connection broke, no answer in time)
 * may hide a commit that made them live and claimed their intents: then the intents decide, at
 * their deadline.
 */
export async function settleOffloaded(
  deps: Deps,
  offloaded: OffloadResult,
  options: Pick<OffloadedWriteOptions, 'jobId' | 'settings'>,
  outcome: { written: boolean } | { error: unknown },
): Promise<void> {
  if (offloaded.artifacts.length === 0) return;
  const notWritten =
    'written' in outcome
      ? !outcome.written
      : outcome.error instanceof AppError || keepsConnection(outcome.error);
  if (!notWritten) return;
  await discardObjects(deps.db, deps.store, offloaded.artifacts, {
    jobId: options.jobId,
    timeoutMs: options.settings.storageWriteTimeoutMs,
  });
}

export async function writeWithOffload<T>(
  deps: Deps,
  document: unknown,
  options: OffloadedWriteOptions,
  write: (offloaded: OffloadResult) => Promise<T | undefined>,
): Promise<T | undefined> {
  const offloaded = await offloadForWrite(deps, document, options);
  let written: T | undefined;
  try {
    written = await write(offloaded);
  } catch (error) {
    await settleOffloaded(deps, offloaded, options, { error });
    throw error;
  }
  await settleOffloaded(deps, offloaded, options, { written: written !== undefined });
  return written;
}
