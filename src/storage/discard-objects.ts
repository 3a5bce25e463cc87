import type { Kysely } from 'kysely';
import type { Database } from '../db/types.js';
import { withTimeout } from '../lib/concurrency.js';
import type { ObjectStore } from './object-store.js';
import { settleStorageIntents } from './storage-intent-repository.js';

/**
 * Deletes objects that belong to nothing (a create or a completion that did not happen), each
 * within `timeoutMs`, then, in one statement, drops their intents (and those of `untouched`,
 * writes never started) and queues what storage refused or did not delete in time for the expiry
 * sweeper.
 */
export async function discardObjects(
  db: Kysely<Database>,
  store: ObjectStore,
  objects: readonly { storageUri: string }[],
  options: { jobId: string; timeoutMs: number; untouched?: readonly string[] },
): Promise<void> {
  const results = await Promise.allSettled(
    objects.map((o) => withTimeout((signal) => store.delete(o.storageUri, { signal }), options.timeoutMs)),
  );
  const uris = objects.map((o) => o.storageUri);
  await settle(db, options.jobId, {
    drop: [...uris.filter((_, i) => results[i].status === 'fulfilled'), ...(options.untouched ?? [])],
    queue: uris.filter((_, i) => results[i].status === 'rejected'),
  });
}

/**
 * Leaves the deleting to the expiry sweeper, without calling storage: for objects of a write that
 * storage did not answer in time, when asking it again would only hold the client longer.
 * `objects` are due at its next run; the intents of `untouched` (never written) are dropped.
 */
export async function queueDeletions(
  db: Kysely<Database>,
  objects: readonly { storageUri: string }[],
  options: { jobId: string; untouched?: readonly string[] },
): Promise<void> {
  await settle(db, options.jobId, {
    drop: options.untouched ?? [],
    queue: objects.map((o) => o.storageUri),
  });
}

async function settle(
  db: Kysely<Database>,
  jobId: string,
  objects: { drop: readonly string[]; queue: readonly string[] },
): Promise<void> {
  try {
    await settleStorageIntents(db, jobId, objects);
  } catch {
    // The database is unreachable too. The intents stay: the sweeper deletes these objects after
    // their deadline. The caller's own error (storage or database down) is what the client sees.
  }
}
