import { setTimeout as sleep } from 'node:timers/promises';
import { type Kysely, sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, pingDatabase } from '../../src/db/database.js';
import { DatabaseReadTimeoutError, isDatabaseUnreachable } from '../../src/db/database-errors.js';
import { createDatabaseHealth } from '../../src/db/database-health.js';
import { withReadTimeout } from '../../src/db/pool-client.js';
import type { Database } from '../../src/db/types.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let testDb: TestDatabase;
const opened: Kysely<Database>[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((db) => db.destroy()));
});
afterAll(async () => {
  await testDb?.destroy();
});

/** A pool of one connection: a query on a new connection proves the old one left the pool. */
function onePool(options: Omit<Parameters<typeof createDatabase>[0], 'connectionString'> = {}) {
  const db = createDatabase({ connectionString: testDb.connectionString, poolSize: 1, ...options });
  opened.push(db);
  return db;
}

const backendPid = async (db: Kysely<Database>) =>
  (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db)).rows[0].pid;

function recordingHealth() {
  const lines: string[] = [];
  const health = createDatabaseHealth({
    warn: (_: unknown, msg: string) => lines.push(`warn ${msg}`),
    info: (_: unknown, msg: string) => lines.push(`info ${msg}`),
  } as never);
  return { health, lines };
}

describe('the pool', () => {
  it('closes a connection that does not answer within the read timeout; the next query runs on a new one', async () => {
    const db = onePool();
    const before = await backendPid(db);
    const started = performance.now();
    const slow = withReadTimeout(200, () => sql`select pg_sleep(5)`.execute(db));
    await expect(slow).rejects.toBeInstanceOf(DatabaseReadTimeoutError);
    expect(performance.now() - started).toBeLessThan(1500);
    expect(await backendPid(db)).not.toBe(before);
  });

  it('sets statement_timeout on its connections, and keeps a connection after it fired', async () => {
    const db = onePool({ statementTimeoutMs: 200 });
    const before = await backendPid(db);
    await expect(sql`select pg_sleep(3)`.execute(db)).rejects.toMatchObject({ code: '57014' });
    expect(await backendPid(db)).toBe(before);
  });

  it('survives the termination of a checked-out connection, and does not hand it out again', async () => {
    const { health, lines } = recordingHealth();
    const db = onePool({ health });
    const terminated = await db.connection().execute(async (connection) => {
      const pid = await backendPid(connection);
      await sql`select pg_terminate_backend(${pid})`.execute(testDb.db);
      // The 'error' event arrives while the client is checked out and between two queries: pg-pool
      // does not listen then.
      await sleep(200);
      await expect(sql`select 1`.execute(connection)).rejects.toSatisfy(isDatabaseUnreachable);
      return pid;
    });
    expect(await backendPid(db)).not.toBe(terminated);
    expect(lines).toEqual([
      'warn database unavailable: requests answer 503 until a new connection succeeds',
      'info database available again',
    ]);
  });

  it('gives up a checkout after the connect timeout, and a ping after its own timeout', async () => {
    const db = onePool({ connectTimeoutMs: 300 });
    let release = () => {};
    const held = db.connection().execute(() => new Promise<void>((resolve) => (release = resolve)));
    await sleep(50);
    try {
      let started = performance.now();
      await expect(pingDatabase(db, { timeoutMs: 100 })).rejects.toBeInstanceOf(DatabaseReadTimeoutError);
      expect(performance.now() - started).toBeLessThan(1000);
      started = performance.now();
      await expect(sql`select 1`.execute(db)).rejects.toThrow('timeout exceeded when trying to connect');
      expect(performance.now() - started).toBeLessThan(1500);
    } finally {
      release();
      await held;
    }
    await pingDatabase(db, { timeoutMs: 1000 });
  });
});
