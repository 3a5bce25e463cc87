import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import {
  createNotificationListener,
  JOB_CHANGED_CHANNEL,
  type NotificationListener,
} from '../../src/db/notification-listener.js';
import type { Database } from '../../src/db/types.js';
import { newJobId } from '../../src/domain/ids.js';
import type { JobStatus } from '../../src/domain/job-statuses.js';
import { seedJob } from '../support/job-factory.js';
import { createTenant, useTestApp } from '../support/test-app.js';

const ctx = useTestApp();
let tenant: Awaited<ReturnType<typeof createTenant>>;

/** A second server instance on the same database, with its own listener and a pool that counts queries. */
interface Instance {
  app: App;
  listener: NotificationListener;
  queries: { started: number; finished: number; jobReads: number };
  close(): Promise<void>;
}
let other: Instance;

async function createInstance(options: { listen: boolean }): Promise<Instance> {
  const queries = { started: 0, finished: 0, jobReads: 0 };
  const pool = new pg.Pool({ connectionString: ctx.database.connectionString, max: 10 });
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    client.query = ((...args: unknown[]) => {
      queries.started++;
      const text = typeof args[0] === 'string' ? args[0] : '';
      const result = query(...args);
      const done = () => {
        queries.finished++;
        if (/from "jobs"/.test(text)) queries.jobReads++;
      };
      if (result instanceof Promise) result.then(done, done);
      return result;
    }) as typeof client.query;
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const logger = pino({ level: 'silent' });
  const listener = createNotificationListener({
    connectionString: ctx.database.connectionString,
    channels: [JOB_CHANGED_CHANNEL],
    logger,
  });
  if (options.listen) await listener.start();
  const app = await buildApp({
    config: ctx.config,
    db,
    store: ctx.store,
    logger,
    listener: options.listen ? listener : false,
    // Only the requests' own queries are counted.
    backgroundTasks: false,
  });
  await app.ready();
  return {
    app,
    listener,
    queries,
    async close() {
      await app.close();
      await listener.close();
      await db.destroy();
    },
  };
}

beforeAll(async () => {
  tenant = await createTenant(ctx.db);
  other = await createInstance({ listen: true });
});
// Runs before the app's own afterAll (registered first), so the other instance closes first.
afterAll(async () => {
  await other?.close();
});

const status = (
  jobId: string,
  options: { app?: App; wait?: number; etag?: string; headers?: Record<string, string> } = {},
) =>
  (options.app ?? ctx.app).inject({
    method: 'GET',
    url: `/v1/jobs/${jobId}/status${options.wait === undefined ? '' : `?wait_seconds=${options.wait}`}`,
    headers: {
      'api-key': tenant.key,
      ...(options.etag ? { 'if-none-match': options.etag } : {}),
      ...options.headers,
    },
  });

const setStatus = (ids: string | string[], value: JobStatus) =>
  ctx.db
    .updateTable('jobs')
    .set({ status: value, updated_at: new Date() })
    .where('id', 'in', Array.isArray(ids) ? ids : [ids])
    .execute();

async function until(condition: () => boolean, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/** Once a sentinel sent last arrives, every notification sent before it has been dispatched. */
async function flush(listener: NotificationListener) {
  const sentinel = `sentinel-${newJobId()}`;
  const arrived = listener.waitFor(JOB_CHANGED_CHANNEL, sentinel, { timeoutMs: 5_000 });
  await sql`select pg_notify(${JOB_CHANGED_CHANNEL}, ${sentinel})`.execute(ctx.db);
  expect(await arrived).toBe(true);
}

const waiting = (listener: NotificationListener, jobId?: string) => () =>
  listener.pendingCount(JOB_CHANGED_CHANNEL, jobId) > 0;

describe('GET /v1/jobs/{job_id}/status: ETag and If-None-Match', () => {
  it('carries an ETag that stays the same while nothing changes', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const first = await status(job.id);
    const second = await status(job.id);
    expect(first.statusCode).toBe(200);
    expect(first.headers.etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    expect(second.headers.etag).toBe(first.headers.etag);
    // Another server instance derives the same tag from the same state.
    expect((await status(job.id, { app: other.app })).headers.etag).toBe(first.headers.etag);
  });

  it('answers 304 without a body when If-None-Match names the current state', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const { etag } = (await status(job.id)).headers as { etag: string };
    const res = await status(job.id, { etag, headers: { 'x-request-id': 'poll-1' } });
    expect(res.statusCode).toBe(304);
    expect(res.body).toBe('');
    expect(res.headers.etag).toBe(etag);
    expect(res.headers['x-request-id']).toBe('poll-1');
    // Weak tags and lists compare by their opaque part.
    expect((await status(job.id, { etag: `"other", W/${etag}` })).statusCode).toBe(304);
  });

  it('answers 200 with a new ETag once the job changed', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const { etag } = (await status(job.id)).headers as { etag: string };
    await setStatus(job.id, 'in_progress');
    const res = await status(job.id, { etag });
    expect(res.statusCode).toBe(200);
    expect(res.json().status).toBe('in_progress');
    expect(res.headers.etag).not.toBe(etag);
  });

  it('rejects wait_seconds outside 0..60 and answers 404 for another organization’s job', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    expect((await status(job.id, { wait: 61 })).statusCode).toBe(400);
    expect((await status(job.id, { wait: -1 })).statusCode).toBe(400);
    const stranger = await createTenant(ctx.db);
    const res = await ctx.app.inject({
      method: 'GET',
      url: `/v1/jobs/${job.id}/status?wait_seconds=5`,
      headers: { 'api-key': stranger.key },
    });
    expect(res.statusCode).toBe(404);
    expect(ctx.listener.pendingCount(JOB_CHANGED_CHANNEL, job.id)).toBe(0);
  });
});

describe('GET /v1/jobs/{job_id}/status?wait_seconds=N', () => {
  it('returns early when the status changes', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const { etag } = (await status(job.id)).headers as { etag: string };
    const started = performance.now();
    const pending = status(job.id, { wait: 10, etag });
    await until(waiting(ctx.listener, job.id));
    await setStatus(job.id, 'in_progress');
    const res = await pending;
    const elapsed = performance.now() - started;
    expect(res.statusCode).toBe(200);
    expect(res.json().status).toBe('in_progress');
    expect(res.headers.etag).not.toBe(etag);
    expect(elapsed).toBeLessThan(3_000);
    expect(ctx.listener.pendingCount(JOB_CHANGED_CHANNEL, job.id)).toBe(0);
  });

  it('without If-None-Match, waits for a change from the state current on arrival', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const readsBefore = other.queries.jobReads;
    const pending = status(job.id, { app: other.app, wait: 10 });
    // The baseline is what the first read saw: change the job only once that read is done.
    await until(() => waiting(other.listener, job.id)() && other.queries.jobReads > readsBefore);
    await setStatus(job.id, 'in_progress');
    const res = await pending;
    expect(res.statusCode).toBe(200);
    expect(res.json().status).toBe('in_progress');
  });

  it('answers at the deadline with the current state when nothing changes', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const { etag } = (await status(job.id)).headers as { etag: string };
    const started = performance.now();
    const [notModified, plain] = await Promise.all([
      status(job.id, { wait: 1, etag }),
      status(job.id, { wait: 1 }),
    ]);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(990);
    expect(elapsed).toBeLessThan(3_000);
    expect(notModified.statusCode).toBe(304);
    expect(notModified.headers.etag).toBe(etag);
    expect(plain.statusCode).toBe(200);
    expect(plain.json().status).toBe('queued');
    expect(plain.headers.etag).toBe(etag);
  });

  it('answers at once for a terminal job', async () => {
    const job = await seedJob(ctx, tenant.organizationId, {
      status: 'failed',
      error: { code: 'boom', message: 'It broke.' },
    });
    const { etag } = (await status(job.id)).headers as { etag: string };
    const started = performance.now();
    const [plain, notModified] = await Promise.all([
      status(job.id, { wait: 30 }),
      status(job.id, { wait: 30, etag }),
    ]);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(plain.statusCode).toBe(200);
    expect(plain.json().status).toBe('failed');
    expect(notModified.statusCode).toBe(304);
  });

  it('keeps waiting after a notification whose re-read shows the state the client has', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    // The insert's own notification must not be the one this test sends.
    await flush(other.listener);
    const { etag } = (await status(job.id, { app: other.app })).headers as { etag: string };
    const readsBefore = other.queries.jobReads;
    let answered = false;
    const pending = status(job.id, { app: other.app, wait: 10, etag }).finally(() => {
      answered = true;
    });
    await until(() => waiting(other.listener, job.id)() && other.queries.jobReads === readsBefore + 1);
    // Same state (as when a change was already seen by the first read): read again, keep waiting.
    await sql`select pg_notify(${JOB_CHANGED_CHANNEL}, ${job.id})`.execute(ctx.db);
    await until(
      () => other.queries.jobReads === readsBefore + 2 && other.queries.started === other.queries.finished,
    );
    expect(answered).toBe(false);
    expect(other.listener.pendingCount(JOB_CHANGED_CHANNEL, job.id)).toBe(1);

    await setStatus(job.id, 'cancelled');
    const res = await pending;
    expect(res.statusCode).toBe(200);
    expect(res.json().status).toBe('cancelled');
  });

  it('wakes a waiter on another server instance sharing the database', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const { etag } = (await status(job.id, { app: other.app })).headers as { etag: string };
    const started = performance.now();
    const pending = status(job.id, { app: other.app, wait: 10, etag });
    await until(waiting(other.listener, job.id));
    expect(ctx.listener.pendingCount(JOB_CHANGED_CHANNEL, job.id)).toBe(0);
    // Changed through instance A's pool; B hears it through its own LISTEN connection.
    await setStatus(job.id, 'in_progress');
    const res = await pending;
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(res.statusCode).toBe(200);
    expect(res.json().status).toBe('in_progress');
  });

  it('forgets the waiter of a client that disconnects', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    await other.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = other.app.server.address() as AddressInfo;
    const request = http.get({
      host: '127.0.0.1',
      port,
      path: `/v1/jobs/${job.id}/status?wait_seconds=30`,
      headers: { 'api-key': tenant.key },
    });
    const failed = new Promise((resolve) => request.on('error', resolve));
    await until(waiting(other.listener, job.id));
    request.destroy();
    await failed;
    await until(() => !waiting(other.listener, job.id)());
  });

  it('answers at once, without a listener', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const deaf = await createInstance({ listen: false });
    try {
      const { etag } = (await status(job.id, { app: deaf.app })).headers as { etag: string };
      const started = performance.now();
      const res = await status(job.id, { app: deaf.app, wait: 30, etag });
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(res.statusCode).toBe(304);
    } finally {
      await deaf.close();
    }
  });

  it('answers the waiting requests at once when the server closes', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const closing = await createInstance({ listen: true });
    try {
      const started = performance.now();
      const pending = status(job.id, { app: closing.app, wait: 30 });
      await until(waiting(closing.listener, job.id));
      await closing.app.close();
      const res = await pending;
      expect(performance.now() - started).toBeLessThan(3_000);
      expect(res.statusCode).toBe(200);
      expect(res.json().status).toBe('queued');
    } finally {
      await closing.close();
    }
  });

  it('holds a thousand waiters without a query, then answers them all after a burst of updates with a few batched reads', async () => {
    const count = 1_000;
    const now = new Date();
    const ids = Array.from({ length: count }, () => newJobId());
    await ctx.db
      .insertInto('jobs')
      .values(
        ids.map((id) => ({
          id,
          organization_id: tenant.organizationId,
          status: 'queued' as const,
          endpoint: '/v1/documents/extract',
          created_at: now,
          updated_at: now,
          expires_at: new Date(now.getTime() + 3_600_000),
          run_after: now,
        })),
      )
      .execute();
    // The inserts' own notifications must not reach the waiters: they would cost a re-read each.
    await flush(other.listener);
    const readsBefore = other.queries.jobReads;
    const answers = Promise.all(ids.map((id) => status(id, { app: other.app, wait: 20 })));
    await until(
      () =>
        other.listener.pendingCount(JOB_CHANGED_CHANNEL) >= count &&
        other.queries.jobReads - readsBefore >= count &&
        other.queries.started === other.queries.finished,
      10_000,
    );

    const queriesWhileWaiting = other.queries.started;
    // A window long enough for any polling to show; nothing is expected to happen in it.
    await sleep(500);
    expect(other.queries.started).toBe(queriesWhileWaiting);
    expect(other.listener.pendingCount(JOB_CHANGED_CHANNEL)).toBe(count);

    const woken = performance.now();
    await setStatus(ids, 'in_progress');
    const results = await answers;
    const wakeMs = performance.now() - woken;
    expect(results.every((r) => r.statusCode === 200 && r.json().status === 'in_progress')).toBe(true);
    // Waiters woken together are re-read together: a few statements, not one per waiter.
    const rereads = other.queries.jobReads - readsBefore - count;
    expect(rereads).toBeGreaterThan(0);
    expect(rereads).toBeLessThanOrEqual(50);
    expect(other.listener.pendingCount(JOB_CHANGED_CHANNEL)).toBe(0);
    // About what the thousand first reads took: the wake itself adds next to nothing.
    expect(wakeMs).toBeLessThan(8_000);
  });
});
