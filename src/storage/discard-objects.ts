import type { Kysely } from 'kysely';
import type { Database } from '../db/types.js';
import { withTimeout } from '../lib/concurrency.js';
import type { ObjectStore } from './object-store.js';
import { enqueueStorageDeletions } from './storage-deletion-repository.js';

/**
 * How long after a write was cut its key is deleted by the sweeper. An upload given up on while
 * the server already had it whole can still be stored a little after the cut; a delete sent at
 * once could arrive first. Minutes are far beyond that, and nobody reads such an object anyway.
 * Deleting a key that late is safe because keys are never reused: a create writes under a new
 * job id, a completion under a random part of its own.
 */
export const CUT_WRITE_DELETE_DELAY_SECONDS = 300;

/**
 * Deletes objects that belong to nothing (a create or a completion that did not happen), each
 * within `timeoutMs`. What storage refuses or does not delete in time is queued for the expiry
 * sweeper, so an outage leaves no object behind for good.
 */
export async function discardObjects(
  db: Kysely<Database>,
  store: ObjectStore,
  objects: readonly { storageUri: string }[],
  options: { jobId?: string; timeoutMs: number },
): Promise<void> {
  const results = await Promise.allSettled(
    objects.map((o) => withTimeout((signal) => store.delete(o.storageUri, { signal }), options.timeoutMs)),
  );
  const failed = objects.filter((_, i) => results[i].status === 'rejected');
  await queueDeletions(db, failed, [], options.jobId);
}

/**
 * Leaves the deleting to the expiry sweeper, without calling storage: for objects of a write that
 * storage did not answer in time, when asking it again would only hold the client longer.
 * `objects` are due at its next run, `cut` (keys whose write was cut) after
 * CUT_WRITE_DELETE_DELAY_SECONDS.
 */
export async function queueDeletions(
  db: Kysely<Database>,
  objects: readonly { storageUri: string }[],
  cut: readonly { storageUri: string }[],
  jobId?: string,
): Promise<void> {
  try {
    await enqueueStorageDeletions(db, [
      ...objects.map((o) => ({ storageUri: o.storageUri, jobId })),
      ...cut.map((o) => ({ storageUri: o.storageUri, jobId, dueInSeconds: CUT_WRITE_DELETE_DELAY_SECONDS })),
    ]);
  } catch {
    // The database is unreachable too; nothing more can be recorded. The caller's own error
    // (storage or database down) is what the client sees.
  }
}
