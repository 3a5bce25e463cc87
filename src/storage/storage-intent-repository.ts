import { sql } from 'kysely';
import type { Db } from '../db/types.js';

/**
 * Records the objects a write is about to store, all of them in one statement, before its first
 * upload: until a commit claims them (lifecycle/: the job's INSERT, `completeLeases`), they belong
 * to nothing but this row. One parameter for the URIs whatever their number, so that one prepared
 * statement serves every write.
 */
export async function recordStorageIntents(
  db: Db,
  jobId: string,
  storageUris: readonly string[],
  deadline: Date,
): Promise<void> {
  await sql`
    insert into storage_intents (storage_uri, job_id, deadline)
    select uri, ${jobId}, ${deadline}::timestamptz from unnest(${storageUris}::text[]) as uri`.execute(db);
}

/**
 * After a write that did not commit, in one statement: the intents of `drop` and `queue` go (by
 * storage_intents_pkey), and `queue` is put on the deletion queue, due at once. `drop` are objects
 * known to be gone or never written; `queue` those still to be deleted. Intents of objects named
 * in neither stay until their deadline.
 */
export async function settleStorageIntents(
  db: Db,
  jobId: string,
  objects: { drop: readonly string[]; queue: readonly string[] },
): Promise<void> {
  if (objects.drop.length + objects.queue.length === 0) return;
  await sql`
    with dropped as (
      delete from storage_intents where storage_uri = any(${[...objects.drop, ...objects.queue]}::text[])
    )
    insert into storage_deletions (storage_uri, job_id)
    select uri, ${jobId} from unnest(${objects.queue}::text[]) as uri`.execute(db);
}

/**
 * Moves up to `limit` intents whose deadline passed to the deletion queue, due at `now`, in one
 * statement, in the order of storage_intents_deadline_idx; rows another sweeper or a commit holds
 * are skipped. A commit that claims its intents later finds them gone and does not happen: the
 * row lock decides between the two, whatever the clocks say.
 */
export async function abandonOverdueIntents(db: Db, now: Date, limit: number): Promise<number> {
  const result = await sql`
    with overdue as (
      select storage_uri from storage_intents
      where deadline <= ${now}
      order by deadline
      limit ${limit}
      for update skip locked
    ), abandoned as (
      delete from storage_intents using overdue
      where storage_intents.storage_uri = overdue.storage_uri
      returning storage_intents.storage_uri, storage_intents.job_id
    )
    insert into storage_deletions (storage_uri, job_id, next_attempt_at)
    select storage_uri, job_id, ${now} from abandoned`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
