import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArtifactRole } from '../../src/domain/artifacts.js';
import { ATTEMPT_OUTCOMES } from '../../src/domain/attempt-outcomes.js';
import { JOB_FIELDS } from '../../src/domain/job-shape.js';
import { JOB_STATUSES, type JobStatus } from '../../src/domain/job-statuses.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const CHECK_VIOLATION = '23514';
const UNIQUE_VIOLATION = '23505';

let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase();
});

afterAll(async () => {
  await testDb?.destroy();
});

async function insertOrganization(): Promise<string> {
  const id = `org_${randomUUID()}`;
  await testDb.db.insertInto('organizations').values({ id, name: 'Acme' }).execute();
  return id;
}

async function insertJob(
  organizationId: string,
  fields: { status?: JobStatus; idempotency_key?: string | null } = {},
): Promise<string> {
  const id = `job_${randomUUID()}`;
  const now = new Date();
  await testDb.db
    .insertInto('jobs')
    .values({
      id,
      organization_id: organizationId,
      status: 'queued',
      endpoint: '/v1/test',
      created_at: now,
      updated_at: now,
      expires_at: new Date(now.getTime() + 3_600_000),
      run_after: now,
      ...fields,
    })
    .execute();
  return id;
}

async function insertArtifact(jobId: string, fields: { role?: ArtifactRole; pointer?: string } = {}) {
  await testDb.db
    .insertInto('job_artifacts')
    .values({
      job_id: jobId,
      role: 'request',
      pointer: '/image',
      kind: 'data_url',
      storage_uri: `file:///tmp/${randomUUID()}`,
      byte_size: 3,
      sha256: 'ab'.repeat(32),
      content_type: 'image/png',
      ...fields,
    })
    .execute();
}

/** The SQLSTATE a rejected promise carries, or 'resolved'. */
async function sqlState(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

describe('initial migration', () => {
  it('creates the tables and records itself', async () => {
    const { rows } = await sql<{ table_name: string }>`
      select table_name from information_schema.tables where table_schema = 'public' order by table_name
    `.execute(testDb.db);
    expect(rows.map((r) => r.table_name)).toEqual(
      expect.arrayContaining(['api_keys', 'job_artifacts', 'jobs', 'organizations']),
    );
    const migrations = await sql<{ name: string }>`select name from kysely_migration`.execute(testDb.db);
    expect(migrations.rows.map((r) => r.name)).toContain('0001_initial');
  });

  it('rejects a job status outside the list', async () => {
    const org = await insertOrganization();
    expect(await sqlState(insertJob(org, { status: 'bogus' as JobStatus }))).toBe(CHECK_VIOLATION);
    expect(await sqlState(insertJob(org, { status: 'in_progress' }))).toBe('resolved');
  });

  it('rejects max_attempts below 1 and an unknown api key scope', async () => {
    const org = await insertOrganization();
    const job = await insertJob(org);
    expect(
      await sqlState(testDb.db.updateTable('jobs').set({ max_attempts: 0 }).where('id', '=', job).execute()),
    ).toBe(CHECK_VIOLATION);
    const key = {
      id: `key_${randomUUID()}`,
      organization_id: org,
      name: null,
      key_hash: randomUUID(),
      display_prefix: 'sk_',
    };
    expect(
      await sqlState(
        testDb.db
          .insertInto('api_keys')
          .values({ ...key, scope: 'root' as never })
          .execute(),
      ),
    ).toBe(CHECK_VIOLATION);
    expect(
      await sqlState(
        testDb.db
          .insertInto('api_keys')
          .values({ ...key, scope: 'worker' })
          .execute(),
      ),
    ).toBe('resolved');
  });

  it('keeps idempotency keys unique within an organization only', async () => {
    const [orgA, orgB] = [await insertOrganization(), await insertOrganization()];
    await insertJob(orgA, { idempotency_key: 'order-42' });
    expect(await sqlState(insertJob(orgA, { idempotency_key: 'order-42' }))).toBe(UNIQUE_VIOLATION);
    expect(await sqlState(insertJob(orgB, { idempotency_key: 'order-42' }))).toBe('resolved');
    // Jobs without a key are not constrained.
    expect(await sqlState(insertJob(orgA, { idempotency_key: null }))).toBe('resolved');
    expect(await sqlState(insertJob(orgA, { idempotency_key: null }))).toBe('resolved');
  });

  it('allows one artifact per job, role and pointer', async () => {
    const org = await insertOrganization();
    const [job, otherJob] = [await insertJob(org), await insertJob(org)];
    await insertArtifact(job);
    expect(await sqlState(insertArtifact(job))).toBe(UNIQUE_VIOLATION);
    expect(await sqlState(insertArtifact(job, { role: 'response' }))).toBe('resolved');
    expect(await sqlState(insertArtifact(job, { pointer: '/other' }))).toBe('resolved');
    expect(await sqlState(insertArtifact(otherJob))).toBe('resolved');
    expect(await sqlState(insertArtifact(job, { role: 'bogus' as ArtifactRole, pointer: '/x' }))).toBe(
      CHECK_VIOLATION,
    );
  });

  it('deletes a job with its artifacts', async () => {
    const org = await insertOrganization();
    const job = await insertJob(org);
    await insertArtifact(job);
    await testDb.db.deleteFrom('jobs').where('id', '=', job).execute();
    const left = await testDb.db.selectFrom('job_artifacts').where('job_id', '=', job).select('id').execute();
    expect(left).toEqual([]);
  });
});

describe('the migrated schema and the job object', () => {
  it('has a column for every field of the job object but `object`', async () => {
    const { rows } = await sql<{ column_name: string }>`
      select column_name from information_schema.columns where table_name = 'jobs'`.execute(testDb.db);
    const columns = rows.map((r) => r.column_name);
    const fields = JOB_FIELDS.filter((field) => field !== 'object');
    expect(fields.filter((field) => !columns.includes(field))).toEqual([]);
  });

  it('allows exactly the statuses and attempt outcomes of the domain lists', async () => {
    const { rows } = await sql<{ definition: string }>`
      select pg_get_constraintdef(oid) as definition from pg_constraint
      where contype = 'c' and conrelid in ('jobs'::regclass, 'job_attempts'::regclass)`.execute(testDb.db);
    const listed = (column: string) => {
      const definition = rows.find((r) => r.definition.includes(`(${column} = ANY`))?.definition ?? '';
      return [...definition.matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1]);
    };
    expect(listed('status')).toEqual([...JOB_STATUSES]);
    expect(listed('outcome')).toEqual([...ATTEMPT_OUTCOMES]);
  });
});
