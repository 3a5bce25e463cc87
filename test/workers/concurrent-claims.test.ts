import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import { createDatabase } from '../../src/db/database.js';
import {
  createNotificationListener,
  JOB_CHANGED_CHANNEL,
  JOB_QUEUED_CHANNEL,
  type NotificationListener,
} from '../../src/db/notification-listener.js';
import { seedJob } from '../support/job-factory.js';
import { useTestApp } from '../support/test-app.js';
import { type Claimed, createWorkerTenant, until, WORKER_TEST_ENV } from './worker-helpers.js';

const JOBS = 2_000;
const LOOPS_PER_APP = 8;

const ctx = useTestApp({ env: WORKER_TEST_ENV });
// A second server on the same database, as another replica would be: its own pool and listener.
let replica: App;
let replicaDb: ReturnType<typeof createDatabase>;
let replicaListener: NotificationListener;
let replicaWaits = 0;

beforeAll(async () => {
  const logger = pino({ level: 'silent' });
  replicaDb = createDatabase({ connectionString: ctx.database.connectionString, poolSize: 5 });
  replicaListener = createNotificationListener({
    connectionString: ctx.database.connectionString,
    channels: [JOB_CHANGED_CHANNEL, JOB_QUEUED_CHANNEL],
    logger,
  });
  await replicaListener.start();
  // Counts the claim waits in progress; the listener itself stays the real one.
  const subscribe = replicaListener.subscribe.bind(replicaListener);
  replicaListener.subscribe = (channel, onNotify) => {
    replicaWaits++;
    const off = subscribe(channel, onNotify);
    return () => {
      replicaWaits--;
      off();
    };
  };
  replica = await buildApp({
    config: ctx.config,
    db: replicaDb,
    store: ctx.store,
    logger,
    listener: replicaListener,
    backgroundTasks: false,
  });
  await replica.ready();
});
let replicaClosed = false;
// Runs before the app's own afterAll (registered first): the replica closes before the database goes.
afterAll(async () => {
  if (!replicaClosed) await replica.close();
  await replicaListener.close();
  await replicaDb.destroy();
});

describe('many workers claiming at once', () => {
  it(`complete ${JOBS} jobs exactly once each, with exact attempt counts`, async () => {
    const tenant = await createWorkerTenant(ctx);
    const ids: string[] = [];
    for (let start = 0; start < JOBS; start += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, JOBS - start) }, () => seedJob(ctx, tenant.organizationId)),
      );
      ids.push(...batch.map((j) => j.id));
    }

    const deliveries = new Map<string, number>();
    const failures: string[] = [];
    const loop = async (app: App, n: number) => {
      const post = (url: string, payload: Record<string, unknown>) =>
        app.inject({
          method: 'POST',
          url: `/v1/worker${url}`,
          headers: { 'api-key': tenant.workerKey },
          payload,
        });
      for (;;) {
        const res = await post('/claim', { worker_id: `w${n}`, limit: 1 + (n % 4) });
        if (res.statusCode !== 200) {
          failures.push(`claim ${res.statusCode} ${res.body}`);
          return;
        }
        const claimed: Claimed[] = res.json().data;
        if (claimed.length === 0) return;
        for (const { job, lease_token } of claimed) {
          deliveries.set(job.id, (deliveries.get(job.id) ?? 0) + 1);
          if (job.attempt_count !== 1)
            failures.push(`${job.id} claimed with attempt_count ${job.attempt_count}`);
          const done = await post(`/jobs/${job.id}/complete`, {
            lease_token,
            response: { status_code: 200, body: { by: n } },
          });
          if (done.statusCode !== 200) failures.push(`complete ${done.statusCode} ${done.body}`);
        }
      }
    };
    await Promise.all([
      ...Array.from({ length: LOOPS_PER_APP }, (_, n) => loop(ctx.app, n)),
      ...Array.from({ length: LOOPS_PER_APP }, (_, n) => loop(replica, LOOPS_PER_APP + n)),
    ]);

    expect(failures).toEqual([]);
    expect(deliveries.size).toBe(JOBS);
    expect([...deliveries.values()].every((count) => count === 1)).toBe(true);

    const jobs = await ctx.db
      .selectFrom('jobs')
      .select(['status', 'attempt_count', (eb) => eb.fn.countAll<string>().as('n')])
      .where('organization_id', '=', tenant.organizationId)
      .groupBy(['status', 'attempt_count'])
      .execute();
    expect(jobs).toEqual([{ status: 'completed', attempt_count: 1, n: String(JOBS) }]);

    const attempts = await ctx.db
      .selectFrom('job_attempts')
      .select([
        'outcome',
        'attempt',
        (eb) => eb.fn.countAll<string>().as('n'),
        (eb) => eb.fn.count<string>('job_id').distinct().as('jobs'),
      ])
      .where('job_id', 'in', ids)
      .groupBy(['outcome', 'attempt'])
      .execute();
    expect(attempts).toEqual([{ outcome: 'succeeded', attempt: 1, n: String(JOBS), jobs: String(JOBS) }]);
  }, 60_000);

  it('a waiting claim ends with an empty list when its server closes, without holding the close up', async () => {
    const tenant = await createWorkerTenant(ctx);
    const claim = replica.inject({
      method: 'POST',
      url: '/v1/worker/claim',
      headers: { 'api-key': tenant.workerKey },
      payload: { worker_id: 'w', wait_seconds: 30 },
    });
    await until(() => replicaWaits === 1);
    const started = Date.now();
    replicaClosed = true;
    await replica.close();
    const res = await claim;
    expect(Date.now() - started).toBeLessThan(3000);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ object: 'list', data: [] });
  });
});
