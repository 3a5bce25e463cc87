import { type Kysely, sql } from 'kysely';

/**
 * Objects about to be written to object storage. A create or a completion records the URIs of
 * its objects here, in one statement, before its first upload starts; the statement that makes
 * the objects live (the job's INSERT, the completion) deletes these rows as it inserts the
 * artifact rows that own the objects from then on. A row still here after its deadline belongs
 * to a write that never committed (it failed, timed out, lost a race, or its process died): the
 * expiry sweeper moves it to storage_deletions, which deletes the object.
 *
 * The URI is the key: it is unique per write (a new job id, a random folder per report), and
 * the commit claims its rows by it. The deadline index serves the sweeper.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('storage_intents')
    .addColumn('storage_uri', 'text', (c) => c.primaryKey())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('deadline', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('storage_intents_deadline_idx')
    .on('storage_intents')
    .column('deadline')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('storage_intents').execute();
}
