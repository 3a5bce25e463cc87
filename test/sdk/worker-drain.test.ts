import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { insertQueuedJobs } from '../support/bulk-jobs.js';
import type { DrainWorkerResult } from '../support/sdk-drain-worker.js';
import { createSdkTenant, type SdkServer, startSdkServer, stopSdkServer, until } from './sdk-helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const JOBS = 20_000;
const WORKERS = 4;

let server: SdkServer;
const children: ChildProcess[] = [];

beforeAll(async () => {
  // The lease reaper runs every second: a job whose report went missing would come back as a
  // lease_expired attempt within the test.
  server = await startSdkServer({ backgroundTasks: true, env: { REAPER_INTERVAL_SECONDS: '1' } });
});
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});
afterAll(() => stopSdkServer(server));

/** A worker process that answers 'ready', then its result after a SIGTERM. */
async function startWorkerProcess(env: Record<string, string>) {
  const child = fork(path.join(root, 'test/support/sdk-drain-worker.ts'), [], {
    cwd: root,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  const result = new Promise<DrainWorkerResult>((resolve, reject) => {
    child.on('message', (message) => {
      if (message !== 'ready') resolve(message as DrainWorkerResult);
    });
    child.once('exit', (code) => reject(new Error(`worker process exited with ${code} before answering`)));
  });
  // Awaited by the test; this only keeps a worker killed after a failure from being unhandled.
  result.catch(() => undefined);
  const [ready] = await once(child, 'message');
  expect(ready).toBe('ready');
  return { child, result };
}

describe('SDK workers in separate processes', () => {
  it(`drain ${JOBS.toLocaleString('en-US')} jobs together, each completed exactly once, in far fewer requests than jobs`, async () => {
    const tenant = await createSdkTenant(server.ctx);
    await insertQueuedJobs(server.ctx.db, {
      organizationId: tenant.organizationId,
      count: JOBS,
      idPrefix: 'd',
    });
    const env = {
      JOBS_BASE_URL: server.baseUrl,
      JOBS_API_KEY: tenant.workerKey,
      JOBS_CONCURRENCY: '100',
      JOBS_LEASE_SECONDS: '10',
    };
    const workers = await Promise.all(Array.from({ length: WORKERS }, () => startWorkerProcess(env)));
    // All of them start claiming at the same moment.
    for (const { child } of workers) child.send('go');

    const left = async () => {
      const row = await server.ctx.db
        .selectFrom('jobs')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('organization_id', '=', tenant.organizationId)
        .where('status', '<>', 'completed')
        .executeTakeFirstOrThrow();
      return Number(row.n);
    };
    await until(async () => (await left()) === 0, 50_000);
    for (const { child } of workers) child.kill('SIGTERM');
    const results = await Promise.all(workers.map((w) => w.result));
    await Promise.all(workers.map(({ child }) => (child.exitCode === null ? once(child, 'exit') : null)));
    expect(workers.map(({ child }) => child.exitCode)).toEqual(workers.map(() => 0));

    // Every handler ran once: no job went to two processes, nor twice to one.
    const handled = results.flatMap((r) => r.handled);
    expect(handled).toHaveLength(JOBS);
    expect(new Set(handled).size).toBe(JOBS);
    for (const r of results) expect(r.handled.length).toBeGreaterThan(0);

    const { rows: jobs } = await sql<{ status: string; attempt_count: number; n: string }>`
        select status, attempt_count, count(*) as n from jobs where organization_id = ${tenant.organizationId}
        group by status, attempt_count`.execute(server.ctx.db);
    expect(jobs).toEqual([{ status: 'completed', attempt_count: 1, n: String(JOBS) }]);
    const { rows: attempts } = await sql<{ outcome: string; n: string; jobs: string }>`
        select a.outcome, count(*) as n, count(distinct a.job_id) as jobs
        from job_attempts a join jobs j on j.id = a.job_id
        where j.organization_id = ${tenant.organizationId} group by a.outcome`.execute(server.ctx.db);
    expect(attempts).toEqual([{ outcome: 'succeeded', n: String(JOBS), jobs: String(JOBS) }]);

    // Claims and reports went in batches: every report through the batch route, at least ten
    // jobs per request on average.
    const sent = results.reduce(
      (sum, r) => ({
        claim: sum.claim + r.requests.claim,
        reports: sum.reports + r.requests.reports,
        single: sum.single + r.requests.single,
      }),
      { claim: 0, reports: 0, single: 0 },
    );
    expect(sent.single).toBe(0);
    expect(sent.reports).toBeLessThan(JOBS / 10);
    expect(sent.claim).toBeLessThan(JOBS / 10);
  }, 60_000);
});
