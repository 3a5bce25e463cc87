import type { Kysely } from 'kysely';
import type { Database } from '../db/types.js';
import { AppError } from '../domain/errors.js';
import {
  OffloadError,
  type OffloadOptions,
  type OffloadResult,
  offloadDocument,
} from './artifact-offloader.js';
import { findInvalidDataUrl } from './data-urls.js';
import { discardObjects, queueDeletions } from './discard-objects.js';
import { type ObjectStore, StorageError } from './object-store.js';

export interface OffloadedWriteOptions extends OffloadOptions {
  /** The job the objects belong to: named in the deletion queue when storage refuses a delete. */
  jobId: string;
  /** The 503 a storage failure becomes: what the client is told was left unchanged. */
  unavailable: { message: string; details?: Record<string, unknown> };
}

/**
 * Store first, then write the row, then clean up: the large parts of `document` go to object
 * storage, and `write` records the stored form in the database. Objects are never left behind:
 * when the offload fails part-way, when `write` throws, or when it answers undefined (the write
 * did not happen: another create won the idempotency key, the lease was lost), every object
 * written is deleted again, or queued for deletion when storage refuses. A storage failure while
 * offloading is a 503 (`options.unavailable`), with nothing written; a data URL that is not
 * base64 is a 422 naming its JSON pointer, before anything is written.
 *
 * Each write has STORAGE_WRITE_TIMEOUT_MS. When one timed out, storage is not asked again: the
 * objects written and the key of the write that was cut (it may still be stored after the cut)
 * are queued for the expiry sweeper, so the 503 comes at the timeout, not a second one later.
 */
export async function writeWithOffload<T>(
  deps: { db: Kysely<Database>; store: ObjectStore },
  document: unknown,
  options: OffloadedWriteOptions,
  write: (offloaded: OffloadResult) => Promise<T | undefined>,
): Promise<T | undefined> {
  const broken = findInvalidDataUrl(document);
  if (broken !== undefined) {
    throw new AppError(
      'unprocessable_entity',
      `Invalid ${options.role}: the data URL at '${broken}' is not valid base64.`,
      { pointer: broken },
    );
  }
  const discarding = { jobId: options.jobId, timeoutMs: options.settings.storageWriteTimeoutMs };
  let offloaded: OffloadResult;
  try {
    offloaded = await offloadDocument(deps.store, document, options);
  } catch (error) {
    if (!(error instanceof OffloadError)) throw error;
    if (error.cut.length > 0) await queueDeletions(deps.db, error.written, error.cut, options.jobId);
    else await discardObjects(deps.db, deps.store, error.written, discarding);
    if (!(error.cause instanceof StorageError)) throw error.cause;
    throw new AppError('service_unavailable', options.unavailable.message, options.unavailable.details, {
      cause: error.cause,
    });
  }
  let written: T | undefined;
  try {
    written = await write(offloaded);
  } catch (error) {
    await discardObjects(deps.db, deps.store, offloaded.artifacts, discarding);
    throw error;
  }
  if (written === undefined) await discardObjects(deps.db, deps.store, offloaded.artifacts, discarding);
  return written;
}
