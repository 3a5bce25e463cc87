import { type Kysely, sql } from 'kysely';

// One row per claim of a job: who ran it, when, and how it ended. The lease token of the claim
// identifies the row, so a worker's report updates its own attempt and never a later one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('job_attempts')
    .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
    .addColumn('attempt', 'integer', (c) => c.notNull().check(sql`attempt >= 1`))
    .addColumn('worker_id', 'text', (c) => c.notNull())
    .addColumn('lease_token', 'uuid', (c) => c.notNull().unique())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull())
    .addColumn('finished_at', 'timestamptz')
    .addColumn('outcome', 'text', (c) =>
      c.check(sql`outcome in ('succeeded', 'failed', 'lease_expired', 'cancelled', 'released', 'expired')`),
    )
    .addColumn('error', 'jsonb')
    .addPrimaryKeyConstraint('job_attempts_pkey', ['job_id', 'attempt'])
    .addCheckConstraint('job_attempts_finished_check', sql`(outcome is null) = (finished_at is null)`)
    .execute();

  // A claim reads one organization's queue: without the organization first, a tenant with an
  // empty queue scans every other tenant's backlog before answering "nothing to do".
  await sql`drop index jobs_claim_idx`.execute(db);
  await sql`create index jobs_claim_idx on jobs (organization_id, run_after, created_at, id)
    where status = 'queued'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index jobs_claim_idx`.execute(db);
  await sql`create index jobs_claim_idx on jobs (run_after, created_at, id) where status = 'queued'`.execute(
    db,
  );
  await db.schema.dropTable('job_attempts').execute();
}
