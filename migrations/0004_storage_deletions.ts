import { type Kysely, sql } from 'kysely';

/**
 * Objects waiting to be deleted from object storage. Expiry moves a job's artifact rows here in
 * the same statement that marks it expired, so a crash between the two never loses track of an
 * object; the sweeper then deletes the objects and, only once that worked, the rows.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('storage_deletions')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('storage_uri', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('storage_deletions_due_idx')
    .on('storage_deletions')
    .columns(['next_attempt_at', 'id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('storage_deletions').execute();
}
