import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { insertOrganization } from '../../src/auth/organization-repository.js';
import {
  createNotificationListener,
  JOB_CHANGED_CHANNEL,
  JOB_QUEUED_CHANNEL,
  type NotificationListener,
} from '../../src/db/notification-listener.js';
import { newJobId } from '../../src/domain/ids.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let testDb: TestDatabase;
const opened: NotificationListener[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close()));
});
afterAll(async () => {
  await testDb?.destroy();
});

async function startListener() {
  const applicationName = `listener_${randomBytes(6).toString('hex')}`;
  const listener = createNotificationListener({
    connectionString: testDb.connectionString,
    channels: [JOB_CHANGED_CHANNEL, JOB_QUEUED_CHANNEL],
    logger: pino({ level: 'silent' }),
    applicationName,
  });
  opened.push(listener);
  await listener.start();
  return { listener, applicationName };
}

const notify = (channel: string, payload: string) =>
  sql`select pg_notify(${channel}, ${payload})`.execute(testDb.db);

/**
 * Notifications of one connection arrive in commit order: once a sentinel sent last has come
 * through, every notification sent before it has been dispatched.
 */
async function flush(listener: NotificationListener) {
  const sentinel = `sentinel-${randomBytes(6).toString('hex')}`;
  const arrived = listener.waitFor(JOB_CHANGED_CHANNEL, sentinel, { timeoutMs: 5_000 });
  await notify(JOB_CHANGED_CHANNEL, sentinel);
  expect(await arrived).toBe(true);
}

async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('notification listener', () => {
  it('wakes only the waiters of the notified payload, and every subscriber of the channel', async () => {
    const { listener } = await startListener();
    const a1 = listener.waitFor(JOB_CHANGED_CHANNEL, 'job-a', { timeoutMs: 5_000 });
    const a2 = listener.waitFor(JOB_CHANGED_CHANNEL, 'job-a', { timeoutMs: 5_000 });
    const b = listener.waitFor(JOB_CHANGED_CHANNEL, 'job-b', { timeoutMs: 5_000 });
    const queuedOnA = listener.waitFor(JOB_QUEUED_CHANNEL, 'job-a', { timeoutMs: 5_000 });
    const heard: string[] = [];
    listener.subscribe(JOB_CHANGED_CHANNEL, (payload) => heard.push(payload));

    await notify(JOB_CHANGED_CHANNEL, 'job-a');
    expect(await a1).toBe(true);
    expect(await a2).toBe(true);
    await flush(listener);

    expect(listener.pendingCount(JOB_CHANGED_CHANNEL, 'job-a')).toBe(0);
    expect(listener.pendingCount(JOB_CHANGED_CHANNEL, 'job-b')).toBe(1);
    expect(listener.pendingCount(JOB_QUEUED_CHANNEL, 'job-a')).toBe(1);
    expect(heard).toEqual(['job-a', expect.stringMatching(/^sentinel-/)]);

    await notify(JOB_CHANGED_CHANNEL, 'job-b');
    expect(await b).toBe(true);
    await notify(JOB_QUEUED_CHANNEL, 'job-a');
    expect(await queuedOnA).toBe(true);
  });

  it('resolves false at the timeout or on abort, and forgets the waiter', async () => {
    const { listener } = await startListener();
    const started = performance.now();
    expect(await listener.waitFor(JOB_CHANGED_CHANNEL, 'never', { timeoutMs: 50 })).toBe(false);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);

    const controller = new AbortController();
    const aborted = listener.waitFor(JOB_CHANGED_CHANNEL, 'never', {
      timeoutMs: 5_000,
      signal: controller.signal,
    });
    expect(listener.pendingCount(JOB_CHANGED_CHANNEL, 'never')).toBe(1);
    controller.abort();
    expect(await aborted).toBe(false);
    expect(listener.pendingCount(JOB_CHANGED_CHANNEL)).toBe(0);
    expect(
      await listener.waitFor(JOB_CHANGED_CHANNEL, 'never', { timeoutMs: 5_000, signal: controller.signal }),
    ).toBe(false);
  });

  it('stops calling a subscriber once it unsubscribes', async () => {
    const { listener } = await startListener();
    const heard: string[] = [];
    const unsubscribe = listener.subscribe(JOB_QUEUED_CHANNEL, (payload) => heard.push(payload));
    await notify(JOB_QUEUED_CHANNEL, '/v1/documents/extract');
    await flush(listener);
    expect(heard).toEqual(['/v1/documents/extract']);

    unsubscribe();
    await notify(JOB_QUEUED_CHANNEL, '/v1/documents/parse');
    await flush(listener);
    expect(heard).toEqual(['/v1/documents/extract']);
  });

  it('refuses a channel it does not listen to', async () => {
    const { listener } = await startListener();
    expect(() => listener.subscribe('other', () => {})).toThrow(/not listened to/);
    await expect(listener.waitFor('other', 'x', { timeoutMs: 10 })).rejects.toThrow(/not listened to/);
  });

  it('reconnects after its backend is terminated, wakes every waiter, and hears later notifications', async () => {
    const { listener, applicationName } = await startListener();
    const backendPid = async () => {
      const { rows } = await sql<{ pid: number }>`
        select pid from pg_stat_activity where application_name = ${applicationName}
      `.execute(testDb.db);
      return rows.map((r) => r.pid);
    };
    const [firstPid] = await backendPid();
    expect(firstPid).toBeGreaterThan(0);
    let reconnects = 0;
    listener.onReconnect(() => reconnects++);
    const waiting = listener.waitFor(JOB_CHANGED_CHANNEL, 'job-missed', { timeoutMs: 10_000 });

    await sql`select pg_terminate_backend(${firstPid})`.execute(testDb.db);
    // Woken without a notification: what happened while disconnected is unknown.
    expect(await waiting).toBe(true);
    expect(reconnects).toBe(1);
    const pids = await backendPid();
    expect(pids).toHaveLength(1);
    expect(pids[0]).not.toBe(firstPid);

    const later = listener.waitFor(JOB_CHANGED_CHANNEL, 'job-later', { timeoutMs: 5_000 });
    await notify(JOB_CHANGED_CHANNEL, 'job-later');
    expect(await later).toBe(true);
  });

  it('resolves pending waiters with false on close and stops reconnecting', async () => {
    const { listener, applicationName } = await startListener();
    const waiting = listener.waitFor(JOB_CHANGED_CHANNEL, 'job-x', { timeoutMs: 10_000 });
    await listener.close();
    expect(await waiting).toBe(false);
    expect(await listener.waitFor(JOB_CHANGED_CHANNEL, 'job-x', { timeoutMs: 10_000 })).toBe(false);
    await until(async () => {
      const { rows } =
        await sql`select 1 from pg_stat_activity where application_name = ${applicationName}`.execute(
          testDb.db,
        );
      return rows.length === 0;
    });
  });
});

describe('jobs trigger (migrations 0002 and 0006)', () => {
  it('notifies job_changed on insert and on status or cancelled changes only, job_queued on becoming queued', async () => {
    const { listener } = await startListener();
    const changed: string[] = [];
    const queued: string[] = [];
    listener.subscribe(JOB_CHANGED_CHANNEL, (p) => {
      if (!p.startsWith('sentinel-')) changed.push(p);
    });
    listener.subscribe(JOB_QUEUED_CHANNEL, (p) => queued.push(p));
    const org = await insertOrganization(testDb.db, 'Acme');
    const now = new Date();
    const insert = (id: string, status: 'queued' | 'validating') =>
      testDb.db
        .insertInto('jobs')
        .values({
          id,
          organization_id: org.id,
          status,
          endpoint: `/v1/${status}`,
          created_at: now,
          updated_at: now,
          expires_at: new Date(now.getTime() + 3_600_000),
          run_after: now,
        })
        .execute();
    const update = (id: string, set: Record<string, unknown>) =>
      testDb.db.updateTable('jobs').set(set).where('id', '=', id).execute();

    const [a, b] = [newJobId(), newJobId()];
    await insert(a, 'queued');
    await insert(b, 'validating');
    await flush(listener);
    expect(changed).toEqual([a, b]);
    expect(queued).toEqual([`${org.id} /v1/queued`]);

    // Neither a lease renewal nor a same-value status write notifies anyone.
    await update(a, { lease_expires_at: new Date(), updated_at: new Date() });
    await update(a, { status: 'queued' });
    await flush(listener);
    expect(changed).toEqual([a, b]);

    await update(b, { status: 'queued' });
    await update(a, { status: 'in_progress' });
    await update(a, { cancelled: true });
    await update(a, { status: 'queued', run_after: new Date() });
    await update(a, { run_after: new Date(Date.now() + 1000) });
    await flush(listener);
    expect(changed).toEqual([a, b, b, a, a, a]);
    expect(queued).toEqual([`${org.id} /v1/queued`, `${org.id} /v1/validating`, `${org.id} /v1/queued`]);
  });
});
