import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { startLeaseReaper } from '../../src/workers/lease-reaper.js';
import { dataUrl, seedJob } from '../support/job-factory.js';
import { useTestApp } from '../support/test-app.js';
import {
  attemptRows,
  claimOk,
  createWorkerTenant,
  jobRow,
  reap,
  testClock,
  WORKER_TEST_ENV,
  type WorkerClient,
  workerClient,
} from './worker-helpers.js';

const clock = testClock();
const ctx = useTestApp({ env: { ...WORKER_TEST_ENV, OFFLOAD_THRESHOLD_BYTES: '1024' }, clock });

let tenant: Awaited<ReturnType<typeof createWorkerTenant>>;
let worker: WorkerClient;
beforeEach(async () => {
  tenant = await createWorkerTenant(ctx);
  worker = workerClient(ctx, tenant.workerKey);
  // Leases left running by earlier tests run out here, so each test reaps only its own.
  clock.advance(3600);
  await reap(ctx, clock);
});

const OK = { status_code: 200, body: { ok: true } };

describe('lease reaper', () => {
  it('leaves live leases alone and takes back the ones that ran out', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const [claimed] = await claimOk(worker, { lease_seconds: 30 });
    clock.advance(29);
    expect(await reap(ctx, clock)).toEqual({ requeued: 0, failed: 0, cancelled: 0 });
    expect((await jobRow(ctx, job.id)).status).toBe('in_progress');

    clock.advance(2);
    const before = clock.now().getTime();
    expect(await reap(ctx, clock)).toEqual({ requeued: 1, failed: 0, cancelled: 0 });
    const row = await jobRow(ctx, job.id);
    expect(row).toMatchObject({
      status: 'queued',
      last_failure_code: 'lease_expired',
      lease_token: null,
      lease_owner: null,
      lease_expires_at: null,
      error: null,
      attempt_count: 1,
    });
    expect(row.run_after.getTime()).toBeGreaterThanOrEqual(before + 5_000);
    const [attempt] = await attemptRows(ctx, job.id);
    expect(attempt).toMatchObject({
      lease_token: claimed.lease_token,
      outcome: 'lease_expired',
      error: { code: 'lease_expired' },
    });
  });

  it('rescues the job of a worker killed mid-job; another worker completes it, the first is fenced off', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const [dead] = await claimOk(worker, { worker_id: 'killed' });
    clock.advance(31);
    await reap(ctx, clock);
    clock.advance(60);
    const [alive] = await claimOk(worker, { worker_id: 'survivor' });
    expect(alive.job).toMatchObject({ id: job.id, attempt_count: 2 });
    expect(alive.lease_token).not.toBe(dead.lease_token);

    // The killed worker comes back with its old token: every call is refused, nothing changes.
    const before = await jobRow(ctx, job.id);
    const stale = { lease_token: dead.lease_token };
    for (const res of [
      await worker.heartbeat(job.id, stale),
      await worker.complete(job.id, { ...stale, response: { status_code: 200, body: { by: 'stale' } } }),
      await worker.fail(job.id, { ...stale, error: { code: 'x', message: 'y' }, retryable: false }),
      await worker.cancelled(job.id, stale),
      await worker.release(job.id, stale),
    ]) {
      expect(res.statusCode).toBe(409);
      expect(res.json().detail.message).toContain('handed to another worker');
    }
    expect(await jobRow(ctx, job.id)).toEqual(before);
    const responseArtifacts = await ctx.db
      .selectFrom('job_artifacts')
      .select('id')
      .where('job_id', '=', job.id)
      .where('role', '=', 'response')
      .execute();
    expect(responseArtifacts).toEqual([]);

    const done = await worker.complete(job.id, { lease_token: alive.lease_token, response: OK });
    expect(done.json()).toMatchObject({ status: 'completed', attempt_count: 2 });
    expect((await attemptRows(ctx, job.id)).map((a) => [a.worker_id, a.outcome])).toEqual([
      ['killed', 'lease_expired'],
      ['survivor', 'succeeded'],
    ]);
  });

  it('a stale completion with a large response leaves no object in storage', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const [dead] = await claimOk(worker);
    clock.advance(31);
    await reap(ctx, clock);
    clock.advance(60);
    const [alive] = await claimOk(worker);
    const large = { status_code: 200, body: { image: dataUrl(20_000, 'image/png').url } };
    const stale = await worker.complete(job.id, { lease_token: dead.lease_token, response: large });
    expect(stale.statusCode).toBe(409);
    const jobDir = fileURLToPath(`${ctx.store.baseUri}/${tenant.organizationId}/${job.id}`);
    const files = await readdir(jobDir, { recursive: true, withFileTypes: true }).catch(() => []);
    expect(files.filter((f) => f.isFile())).toEqual([]);

    const done = await worker.complete(job.id, { lease_token: alive.lease_token, response: large });
    expect(done.statusCode).toBe(200);
    const read = await ctx.app.inject({
      method: 'GET',
      url: `/v1/jobs/${job.id}?include_response=true`,
      headers: { 'api-key': tenant.clientKey },
    });
    expect(read.json().response).toEqual(large);
  });

  it('fails the job with lease_expired once its attempts are used up', async () => {
    const job = await seedJob(ctx, tenant.organizationId, { maxAttempts: 1 });
    await claimOk(worker);
    clock.advance(31);
    expect(await reap(ctx, clock)).toEqual({ requeued: 0, failed: 1, cancelled: 0 });
    const row = await jobRow(ctx, job.id);
    expect(row).toMatchObject({
      status: 'failed',
      last_failure_code: 'lease_expired',
      error: { code: 'lease_expired' },
      lease_token: null,
    });
    expect(row.completed_at).not.toBeNull();
  });

  it('ends a job whose cancellation was asked as cancelled', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    await claimOk(worker);
    const cancel = await ctx.app.inject({
      method: 'POST',
      url: `/v1/jobs/${job.id}/cancel`,
      headers: { 'api-key': tenant.clientKey },
    });
    expect(cancel.json().cancelled).toBe(true);
    clock.advance(31);
    expect(await reap(ctx, clock)).toEqual({ requeued: 0, failed: 0, cancelled: 1 });
    expect(await jobRow(ctx, job.id)).toMatchObject({ status: 'cancelled', cancelled: true, error: null });
    expect((await attemptRows(ctx, job.id)).map((a) => a.outcome)).toEqual(['lease_expired']);
  });

  it('a heartbeat after the reaper took the lease back answers 409', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const [claimed] = await claimOk(worker);
    clock.advance(31);
    await reap(ctx, clock);
    const res = await worker.heartbeat(job.id, { lease_token: claimed.lease_token });
    expect(res.statusCode).toBe(409);
    expect(res.json().detail.details).toEqual({ job_id: job.id, status: 'queued' });
  });

  it('several reapers at once take back every lapsed lease exactly once', async () => {
    const count = 240;
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        seedJob(ctx, tenant.organizationId, { at: new Date(Date.now() - i) }),
      ),
    );
    let claimed = 0;
    while (claimed < count) claimed += (await claimOk(worker, { limit: 100 })).length;
    clock.advance(31);
    const results = await Promise.all([reap(ctx, clock, 25), reap(ctx, clock, 25), reap(ctx, clock, 25)]);
    expect(results.reduce((sum, r) => sum + r.requeued, 0)).toBe(count);
    const outcomes = await ctx.db
      .selectFrom('job_attempts')
      .innerJoin('jobs', 'jobs.id', 'job_attempts.job_id')
      .select(['job_attempts.outcome', (eb) => eb.fn.countAll<string>().as('n')])
      .where('jobs.organization_id', '=', tenant.organizationId)
      .groupBy('job_attempts.outcome')
      .execute();
    expect(outcomes).toEqual([{ outcome: 'lease_expired', n: String(count) }]);
  });

  it('runs as a periodic task whose runNow() reaps', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    await claimOk(worker);
    clock.advance(31);
    const task = startLeaseReaper(
      { ...ctx.jobs, clock, config: { ...ctx.config, reaperBatchSize: 10, reaperIntervalSeconds: 3600 } },
      pino({ level: 'silent' }),
    );
    try {
      await task.runNow();
    } finally {
      await task.stop();
    }
    expect((await jobRow(ctx, job.id)).status).toBe('queued');
  });
});
