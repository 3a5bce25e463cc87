import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import type { Database } from '../../src/db/types.js';
import { seedJob } from '../support/job-factory.js';
import { useTestApp } from '../support/test-app.js';
import { createWorkerTenant, until, WORKER_TEST_ENV, workerClient } from './worker-helpers.js';

const ctx = useTestApp({ env: WORKER_TEST_ENV });

// A second server on the same database whose pool counts the claim statements it runs, and its
// own LISTEN connection: what a waiting claim does while other organizations queue jobs.
let replica: App;
let claims = 0;
let pool: pg.Pool;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: ctx.database.connectionString, max: 4 });
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    client.query = ((...args: unknown[]) => {
      const first = args[0] as string | { text?: string };
      const text = typeof first === 'string' ? first : (first?.text ?? '');
      if (text.includes('picked as (')) claims++;
      return query(...args);
    }) as typeof client.query;
  });
  replica = await buildApp({
    config: ctx.config,
    db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }),
    store: ctx.store,
    logger: pino({ level: 'silent' }),
    backgroundTasks: false,
  });
  await replica.ready();
});
afterAll(async () => {
  await replica?.close();
  await pool?.end();
});

describe('a waiting claim', () => {
  it('is woken only by a job it could take: not by other organizations, nor other endpoints', async () => {
    const mine = await createWorkerTenant(ctx);
    const others = await createWorkerTenant(ctx);
    const before = claims;
    const waiting = replica.inject({
      method: 'POST',
      url: '/v1/worker/claim',
      headers: { 'api-key': mine.workerKey },
      payload: { worker_id: 'w', wait_seconds: 10, endpoints: ['/v1/documents/extract'] },
    });
    await until(() => claims === before + 1);
    for (let i = 0; i < 5; i++) await seedJob(ctx, others.organizationId);
    await seedJob(ctx, mine.organizationId, { endpoint: '/v1/documents/parse' });
    // The notifications reached the replica's listener (a status wait there would have woken)...
    await new Promise((resolve) => setTimeout(resolve, 300));
    // ...and no claim statement ran for them.
    expect(claims).toBe(before + 1);
    const job = await seedJob(ctx, mine.organizationId);
    const res = await waiting;
    expect(res.json().data.map((c: { job: { id: string } }) => c.job.id)).toEqual([job.id]);
    expect(claims).toBe(before + 2);
    // The other organization's queue is untouched.
    const theirs = await workerClient(ctx, others.workerKey).claim({ limit: 10 });
    expect(theirs.json().data).toHaveLength(5);
  });
});
