import { type Kysely, sql } from 'kysely';

// Migrations are frozen history: they never import application code, so the status and scope
// lists are spelled out here as they were when this migration was written.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('organizations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) =>
      c.notNull().references('organizations.id').onDelete('cascade'),
    )
    .addColumn('name', 'text')
    .addColumn('scope', 'text', (c) => c.notNull().check(sql`scope in ('client', 'worker', 'admin')`))
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('display_prefix', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('api_keys_organization_idx').on('api_keys').column('organization_id').execute();

  await db.schema
    .createTable('jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) =>
      c.notNull().references('organizations.id').onDelete('cascade'),
    )
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .check(
          sql`status in ('validating', 'queued', 'in_progress', 'completed', 'failed', 'cancelled', 'expired')`,
        ),
    )
    .addColumn('endpoint', 'text', (c) => c.notNull())
    // json, not jsonb: the text is kept as written, so a restored request has the client's key
    // order. Nothing queries inside these documents.
    .addColumn('request', 'json')
    .addColumn('response', 'json')
    .addColumn('error', 'jsonb')
    .addColumn('warnings', 'jsonb')
    .addColumn('metadata', 'jsonb')
    .addColumn('request_gcs_paths', 'jsonb')
    .addColumn('cloud_task_name', 'text')
    .addColumn('cancelled', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('attempt_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (c) => c.notNull().defaultTo(3).check(sql`max_attempts >= 1`))
    .addColumn('last_attempt_at', 'timestamptz')
    .addColumn('last_failure_code', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('started_at', 'timestamptz')
    .addColumn('completed_at', 'timestamptz')
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('run_after', 'timestamptz', (c) => c.notNull())
    .addColumn('lease_owner', 'text')
    .addColumn('lease_token', 'uuid')
    .addColumn('lease_expires_at', 'timestamptz')
    .addColumn('idempotency_key', 'text')
    .addColumn('request_hash', 'text')
    .execute();

  // Listing: newest or oldest first within an organization, keyset on (created_at, id).
  await db.schema
    .createIndex('jobs_org_created_idx')
    .on('jobs')
    .columns(['organization_id', 'created_at', 'id'])
    .execute();
  await db.schema
    .createIndex('jobs_org_status_created_idx')
    .on('jobs')
    .columns(['organization_id', 'status', 'created_at', 'id'])
    .execute();
  await db.schema
    .createIndex('jobs_org_endpoint_created_idx')
    .on('jobs')
    .columns(['organization_id', 'endpoint', 'created_at', 'id'])
    .execute();
  await sql`create index jobs_metadata_idx on jobs using gin (metadata jsonb_path_ops)`.execute(db);
  // Claiming: the oldest runnable queued jobs, in the order the claim query sorts them.
  await sql`create index jobs_claim_idx on jobs (run_after, created_at, id) where status = 'queued'`.execute(
    db,
  );
  // Rescue of expired leases.
  await sql`create index jobs_lease_idx on jobs (lease_expires_at) where status = 'in_progress'`.execute(db);
  // Expiry sweep: only jobs that still hold data.
  await sql`create index jobs_expiry_idx on jobs (expires_at) where status <> 'expired'`.execute(db);
  await sql`create unique index jobs_idempotency_idx on jobs (organization_id, idempotency_key)
    where idempotency_key is not null`.execute(db);

  await db.schema
    .createTable('job_artifacts')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('request', 'response')`))
    .addColumn('pointer', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('data_url', 'json')`))
    .addColumn('storage_uri', 'text', (c) => c.notNull())
    .addColumn('byte_size', 'bigint', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('job_artifacts_job_role_pointer_key', ['job_id', 'role', 'pointer'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('job_artifacts').execute();
  await db.schema.dropTable('jobs').execute();
  await db.schema.dropTable('api_keys').execute();
  await db.schema.dropTable('organizations').execute();
}
