import { type CompiledQuery, Kysely, PostgresDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/types.js';
import { claimQueuedJobs } from '../../src/lifecycle/claim-repository.js';
import { completeLeases } from '../../src/lifecycle/completion-repository.js';
import { lockLeasedJobs, renewLeases } from '../../src/lifecycle/lease-repository.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A million queued jobs over a thousand organizations, then the plan of the claim statements.
const ORGANIZATIONS = 1000;
const JOBS = 1_000_000;

let database: TestDatabase;
let pool: pg.Pool;
let db: Kysely<Database>;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.connectionString, max: 2 });
  db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  await sql`insert into organizations (id, name)
    select 'org_' || lpad(o::text, 16, '0'), 'org ' || o from generate_series(1, ${ORGANIZATIONS}::int) o`.execute(
    db,
  );
  await sql`set session_replication_role = replica`.execute(db);
  await sql`
    insert into jobs (id, organization_id, status, endpoint, max_attempts, created_at, updated_at, expires_at, run_after)
    select 'job_' || lpad(i::text, 21, '0'), 'org_' || lpad((i % ${ORGANIZATIONS} + 1)::text, 16, '0'), 'queued',
      '/v1/documents/extract', 3, t, t, t + interval '7 days', t
    from generate_series(1, ${JOBS}::int) i,
      lateral (select now() - interval '2 days' + make_interval(secs => i / 10.0) as t) ts`.execute(db);
  await sql`vacuum (analyze) jobs`.execute(db);
}, 180_000);
afterAll(async () => {
  await pool?.end();
  await database?.destroy();
});

/** The statement a repository function sends, without keeping its effects (rolled back). */
async function statementOf(run: (trx: Transaction<Database>) => Promise<unknown>, marker: string) {
  let captured: CompiledQuery | undefined;
  const capturing = new Kysely<Database>({
    dialect: new PostgresDialect({ pool }),
    log: (event) => {
      if (event.query.sql.includes(marker)) captured = event.query;
    },
  });
  await capturing
    .transaction()
    .execute(async (trx) => {
      await run(trx);
      throw new Error('rolled back: only the statement was wanted');
    })
    .catch(() => {});
  return captured as CompiledQuery;
}

function claimStatement(organizationIds: readonly string[] | null): Promise<CompiledQuery> {
  const now = new Date();
  const claim = {
    organizationIds,
    lockedOrganizationIds: [],
    workerId: 'plan',
    endpoints: null,
    limit: 100,
    leaseExpiresAt: new Date(now.getTime() + 60_000),
    now,
  };
  return statementOf((trx) => claimQueuedJobs(trx, claim), 'picked as (');
}

/** A hundred leases of jobs of the table, as a batch of reports names them. */
const leases = Array.from({ length: 100 }, (_, i) => ({
  organizationId: `org_${String((i % ORGANIZATIONS) + 1).padStart(16, '0')}`,
  jobId: `job_${String(i * 7919 + 1).padStart(21, '0')}`,
  leaseToken: '00000000-0000-4000-8000-000000000000',
}));

async function planOf(query: CompiledQuery): Promise<string> {
  const { rows } = await pool.query(`explain (format json) ${query.sql}`, query.parameters as unknown[]);
  return JSON.stringify(rows[0]['QUERY PLAN']);
}

describe('the statements of a batch of reports, while statistics say no job is in progress', () => {
  // Every job of the table is queued: a plan through jobs_org_status_created_idx or jobs_lease_idx
  // would look cheap, and then walk every in-progress entry for each job of the batch.
  it('find their jobs by primary key only', async () => {
    const now = new Date();
    const statements = [
      await statementOf(
        (trx) =>
          completeLeases(
            trx,
            leases.map((lease) => ({ lease, response: {}, warnings: null, artifacts: [] })),
            now,
          ),
        'ended as (',
      ),
      await statementOf(
        (trx) =>
          renewLeases(
            trx,
            leases.map((lease) => ({ lease, leaseSeconds: 60 })),
            now,
          ),
        'make_interval',
      ),
      await statementOf((trx) => lockLeasedJobs(trx, leases), 'for update of jobs'),
    ];
    for (const statement of statements) {
      const plan = await planOf(statement);
      expect(plan).toContain('jobs_pkey');
      expect(plan).not.toMatch(/jobs_org_status_created_idx|jobs_lease_idx/);
    }
  });
});

describe('the claim statement at a million jobs over a thousand organizations', () => {
  it('never scans jobs sequentially: a fleet claim of every organization', async () => {
    const plan = await planOf(await claimStatement(null));
    expect(plan).toContain('jobs_claim_idx');
    expect(plan).not.toMatch(
      /"Node Type":"Seq Scan","Parent Relationship":"[^"]*","Parallel Aware":false,"Async Capable":false,"Relation Name":"jobs"/,
    );
    expect(plan.match(/"Seq Scan"[^}]*"Relation Name":"jobs"/g) ?? []).toEqual([]);
  });

  it('never scans jobs sequentially: one organization, or a few', async () => {
    for (const ids of [['org_0000000000000042'], ['org_0000000000000001', 'org_0000000000000500']]) {
      const plan = await planOf(await claimStatement(ids));
      expect(plan.match(/"Seq Scan"[^}]*"Relation Name":"jobs"/g) ?? []).toEqual([]);
      expect(plan).toContain('jobs_claim_idx');
    }
  });
});
