import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createNotificationListener,
  JOB_CHANGED_CHANNEL,
  type NotificationListener,
} from '../../src/db/notification-listener.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// The listener behind a proxy that can go silent: a connection that neither answers nor breaks.
const PROBE_INTERVAL_MS = 200;
const CONNECT_TIMEOUT_MS = 300;

let testDb: TestDatabase;
let proxy: TcpProxy;
const opened: NotificationListener[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase();
  proxy = await startTcpProxy(Number(new URL(testDb.connectionString).port));
});
afterEach(async () => {
  proxy.speak();
  await Promise.all(opened.splice(0).map((l) => l.close()));
});
afterAll(async () => {
  await proxy?.close();
  await testDb?.destroy();
});

function startListener() {
  const url = new URL(testDb.connectionString);
  url.port = String(proxy.port);
  const lines: { level: string; msg: string }[] = [];
  const record = (level: string) => (_: unknown, msg?: string) =>
    lines.push({ level, msg: msg ?? String(_) });
  const listener = createNotificationListener({
    connectionString: url.toString(),
    channels: [JOB_CHANGED_CHANNEL],
    logger: {
      warn: record('warn'),
      info: record('info'),
      debug: record('debug'),
      error: record('error'),
    } as never,
    applicationName: `listener_${randomBytes(6).toString('hex')}`,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    probeIntervalMs: PROBE_INTERVAL_MS,
  });
  opened.push(listener);
  return { listener, lines };
}

describe('notification listener on a connection gone silent', () => {
  it('notices it by its probe, reconnects once the database answers, warns once and logs once when back', async () => {
    const { listener, lines } = startListener();
    await listener.start();
    let reconnects = 0;
    listener.onReconnect(() => reconnects++);
    const waiting = listener.waitFor(JOB_CHANGED_CHANNEL, 'job-missed', { timeoutMs: 10_000 });

    proxy.silence();
    // Long enough for the probe to time out and a few reconnects to time out too.
    await sleep(PROBE_INTERVAL_MS + CONNECT_TIMEOUT_MS * 4);
    expect(reconnects).toBe(0);
    proxy.speak();
    const spoke = performance.now();
    // Woken by the reconnect: what was notified meanwhile is unknown.
    expect(await waiting).toBe(true);
    expect(performance.now() - spoke).toBeLessThan(3000);
    expect(reconnects).toBe(1);

    const heard = listener.waitFor(JOB_CHANGED_CHANNEL, 'job-after', { timeoutMs: 5_000 });
    await sql`select pg_notify(${JOB_CHANGED_CHANNEL}, 'job-after')`.execute(testDb.db);
    expect(await heard).toBe(true);

    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      'notification listener lost its database connection; reconnecting',
    ]);
    expect(lines.filter((l) => l.level === 'info').map((l) => l.msg)).toEqual([
      'notification listener reconnected',
    ]);
    expect(lines.filter((l) => l.level === 'debug').length).toBeGreaterThan(0);
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('gives up connecting after the connect timeout when the database does not answer', async () => {
    proxy.silence();
    const { listener } = startListener();
    const started = performance.now();
    await expect(listener.start()).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(CONNECT_TIMEOUT_MS + 1000);
  });

  it('closes within the connect timeout when the database does not answer', async () => {
    const { listener } = startListener();
    await listener.start();
    proxy.silence();
    const started = performance.now();
    await listener.close();
    expect(performance.now() - started).toBeLessThan(CONNECT_TIMEOUT_MS + 1000);
  });
});
