import type { Kysely } from 'kysely';
import type { Database } from '../db/types.js';
import type { ObjectStore } from './object-store.js';
import { enqueueStorageDeletions } from './storage-deletion-repository.js';

/**
 * Deletes objects that belong to nothing (a create or a completion that did not happen). What
 * storage refuses to delete now is queued for the expiry sweeper, so an outage leaves no
 * object behind for good.
 */
export async function discardObjects(
  db: Kysely<Database>,
  store: ObjectStore,
  objects: readonly { storageUri: string }[],
  jobId?: string,
): Promise<void> {
  const results = await Promise.allSettled(objects.map((o) => store.delete(o.storageUri)));
  const failed = objects.filter((_, i) => results[i].status === 'rejected');
  if (failed.length === 0) return;
  try {
    await enqueueStorageDeletions(
      db,
      failed.map((o) => ({ storageUri: o.storageUri, jobId })),
    );
  } catch {
    // The database is unreachable too; nothing more can be recorded. The caller's own error
    // (storage or database down) is what the client sees.
  }
}
