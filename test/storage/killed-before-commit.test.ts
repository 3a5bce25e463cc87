import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepExpiredJobs } from '../../src/jobs/expiry-sweeper.js';
import { INTENT_MARGIN_MS } from '../../src/storage/offloaded-write.js';
import { dataUrl } from '../support/job-factory.js';
import { type ServerProcess, startServerProcess } from '../support/server-process.js';
import { type StorageBackend, startStorageBackend } from '../support/storage-backends.js';
import { createTenant, createTestApp, type TestContext } from '../support/test-app.js';
import { testClock, until } from '../workers/worker-helpers.js';

// The real server as a child process, killed with SIGKILL between the upload of a create's
// objects and the commit of its job: the objects are in the store, no row names them, and no
// code of the dead process will ever clean them up. Their intents, written before the uploads,
// let the sweeper (of this test, past the grace period) delete them.
//
// The commit is held by a lock this test takes on the jobs table (SHARE: an INSERT waits for
// it), so nothing test-only runs in the server.

const TEST_TIMEOUT_MS = 90_000;

describe('a process killed between upload and commit', () => {
  let backend: StorageBackend;
  let ctx: TestContext;
  let dataDir: string;
  let server: ServerProcess | undefined;
  const clock = testClock();

  beforeAll(async () => {
    backend = await startStorageBackend('file');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'killed-server-'));
    ctx = await createTestApp({ store: backend.store, clock });
  });
  afterAll(async () => {
    await server?.kill('SIGKILL');
    await ctx?.close();
    await backend?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it(
    'leaves objects that the sweeper deletes once the grace period has passed',
    async () => {
      const tenant = await createTenant(ctx.db);
      server = await startServerProcess({
        DATABASE_URL: ctx.database.connectionString,
        STORAGE_URL: backend.store.baseUri,
        DATA_DIR: dataDir,
        // 'jobs server ready' is an info line.
        LOG_LEVEL: 'info',
        LOG_REQUESTS: 'false',
        OFFLOAD_THRESHOLD_BYTES: '1024',
        // No background run of the server's own: only this test's sweeper may delete anything.
        REAPER_INTERVAL_SECONDS: '3600',
        EXPIRY_SWEEP_INTERVAL_SECONDS: '3600',
      });

      const locker = new pg.Client({ connectionString: ctx.database.connectionString });
      await locker.connect();
      let answered: unknown;
      try {
        await locker.query('begin');
        await locker.query('lock table jobs in share mode');

        const creating = fetch(`${server.url}/v1/jobs`, {
          method: 'POST',
          headers: { 'api-key': tenant.key, 'content-type': 'application/json' },
          body: JSON.stringify({
            endpoint: '/v1/documents/extract',
            request: {
              documents: [1, 2].map((seed) => ({
                filename: `d${seed}.pdf`,
                url: dataUrl(4000, 'application/pdf', seed).url,
              })),
            },
          }),
        }).then(
          (res) => {
            answered = res.status;
          },
          (error: unknown) => {
            answered = error;
          },
        );

        // Both objects written, and the job's INSERT waiting for the lock: then the process dies.
        await until(async () => {
          if (answered !== undefined) throw new Error(`the create answered (${String(answered)}) too early`);
          return (await backend.objectUris()).length === 2;
        }, 30_000);
        const waiting = async () =>
          (
            await locker.query<{ pid: number }>(
              `select pid from pg_stat_activity
               where datname = current_database() and wait_event_type = 'Lock' and query ilike 'insert into "jobs"%'`,
            )
          ).rows;
        await until(async () => (await waiting()).length === 1, 30_000);
        const [{ pid }] = await waiting();
        await server.kill('SIGKILL');
        expect(server.exit).toEqual({ code: null, signal: 'SIGKILL' });
        await creating;
        // The client saw its connection drop: no answer, no job.
        expect(answered).toBeInstanceOf(Error);

        const intents = await locker.query('select storage_uri from storage_intents order by storage_uri');
        expect(intents.rows.map((r) => r.storage_uri)).toEqual(await backend.objectUris());

        await locker.query('rollback');
        // The dead server's backend finishes its INSERT, then finds its client gone and rolls back.
        await until(
          async () =>
            (await locker.query('select 1 from pg_stat_activity where pid = $1', [pid])).rowCount === 0,
          30_000,
        );
      } finally {
        await locker.end();
      }

      const jobs = await ctx.db
        .selectFrom('jobs')
        .select('id')
        .where('organization_id', '=', tenant.organizationId);
      expect(await jobs.execute()).toEqual([]);
      const orphans = await backend.objectUris();
      expect(orphans).toHaveLength(2);

      // Within the grace period the sweeper leaves them: the writer might still be alive.
      await sweepExpiredJobs({ ...ctx.jobs, clock });
      expect(await backend.objectUris()).toEqual(orphans);

      clock.advance((INTENT_MARGIN_MS + 60_000) / 1000);
      const swept = await sweepExpiredJobs({ ...ctx.jobs, clock });
      expect(swept).toMatchObject({ abandoned: 2, objectsDeleted: 2, objectsFailed: 0 });
      expect(await backend.objectUris()).toEqual([]);
      expect(await backend.emptyFolders()).toEqual([]);
      expect(await ctx.db.selectFrom('storage_intents').selectAll().execute()).toEqual([]);
      expect(await ctx.db.selectFrom('storage_deletions').selectAll().execute()).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );
});
