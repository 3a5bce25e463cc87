import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database } from '../db/types.js';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * Takes up to `limit` due deletions for this sweeper by moving their next attempt `leaseSeconds`
 * ahead: another sweeper skips them, and a sweeper that dies leaves them due again later. One
 * statement, no transaction held while storage is called.
 */
export async function takeDueStorageDeletions(db: Db, now: Date, limit: number, leaseSeconds: number) {
  const result = await sql<{ id: string; storage_uri: string; attempts: number }>`
    update storage_deletions set
      attempts = attempts + 1,
      next_attempt_at = ${now}::timestamptz + make_interval(secs => ${leaseSeconds})
    where id in (
      select id from storage_deletions
      where next_attempt_at <= ${now}
      order by next_attempt_at, id
      limit ${limit}
      for update skip locked
    )
    returning id, storage_uri, attempts`.execute(db);
  return result.rows;
}

export async function removeStorageDeletions(db: Db, ids: readonly string[]) {
  if (ids.length === 0) return;
  await db.deleteFrom('storage_deletions').where('id', 'in', ids).execute();
}

export async function postponeStorageDeletion(db: Db, id: string, nextAttemptAt: Date, error: string) {
  await db
    .updateTable('storage_deletions')
    .set({ next_attempt_at: nextAttemptAt, last_error: error.slice(0, 1000) })
    .where('id', '=', id)
    .execute();
}
