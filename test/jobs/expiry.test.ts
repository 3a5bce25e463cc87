import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepExpiredJobs } from '../../src/jobs/expiry-sweeper.js';
import { GcsObjectStore } from '../../src/storage/gcs-store.js';
import { type FakeGcsServer, startFakeGcsServer } from '../support/fake-gcs-server.js';
import { dataUrl, seedJob } from '../support/job-factory.js';
import { createTenant, createTestApp, type TestContext, useTestApp } from '../support/test-app.js';
import { attemptRows, claimOk, createWorkerTenant, jobRow, workerClient } from '../workers/worker-helpers.js';

const withDocument = (seed: number) => ({
  document: { filename: 'a.pdf', url: dataUrl(3000, 'application/pdf', seed).url },
});

async function makeDue(ctx: TestContext, ids: string[]) {
  await ctx.db
    .updateTable('jobs')
    .set({ expires_at: new Date(Date.now() - 1000) })
    .where('id', 'in', ids)
    .execute();
}

async function countRows(ctx: TestContext, table: 'job_artifacts' | 'storage_deletions') {
  const r = await ctx.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

describe('expiry on the filesystem store', () => {
  const ctx = useTestApp({ env: { OFFLOAD_THRESHOLD_BYTES: '1024' } });
  let tenant: Awaited<ReturnType<typeof createTenant>>;
  const files = async () =>
    (await readdir(fileURLToPath(ctx.store.baseUri), { recursive: true, withFileTypes: true })).filter((e) =>
      e.isFile(),
    );

  beforeAll(async () => {
    tenant = await createTenant(ctx.db);
  });

  it('expires due jobs of every status, drops their payloads and deletes their objects', async () => {
    const queued = await seedJob(ctx, tenant.organizationId, { request: withDocument(1) });
    const completed = await seedJob(ctx, tenant.organizationId, {
      request: withDocument(2),
      status: 'completed',
      response: { status_code: 200, body: { image: dataUrl(4000, 'image/png', 3).url } },
    });
    const running = await seedJob(ctx, tenant.organizationId, {
      request: withDocument(4),
      status: 'in_progress',
    });
    const alive = await seedJob(ctx, tenant.organizationId, { request: withDocument(5) });
    expect(await files()).toHaveLength(5);
    await makeDue(ctx, [queued.id, completed.id, running.id]);

    const result = await sweepExpiredJobs({ ...ctx.jobs, clock: { now: () => new Date() } });
    expect(result).toEqual({ expired: 3, abandoned: 0, objectsDeleted: 4, objectsFailed: 0 });
    expect(await files()).toHaveLength(1);
    expect(await countRows(ctx, 'storage_deletions')).toBe(0);

    for (const id of [queued.id, completed.id, running.id]) {
      const res = await ctx.app.inject({
        url: `/v1/jobs/${id}?include_request=true&include_response=true`,
        headers: { 'api-key': tenant.key },
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({
        status: 'expired',
        request: null,
        response: null,
        request_gcs_paths: null,
        warnings: null,
      });
      expect(Number.isInteger(res.json().completed_at)).toBe(true);
    }
    const leftover = await ctx.db
      .selectFrom('jobs')
      .select(['status', 'lease_token'])
      .where('id', '=', running.id)
      .executeTakeFirstOrThrow();
    expect(leftover).toEqual({ status: 'expired', lease_token: null });
    const untouched = await ctx.app.inject({
      url: `/v1/jobs/${alive.id}?include_request=true`,
      headers: { 'api-key': tenant.key },
    });
    expect(untouched.json()).toMatchObject({ status: 'queued', request: withDocument(5) });
  });

  it('keeps completed_at of a job that ended before it expired', async () => {
    const job = await seedJob(ctx, tenant.organizationId, {
      status: 'failed',
      error: { code: 'e', message: 'm' },
    });
    const before = await ctx.db
      .selectFrom('jobs')
      .select('completed_at')
      .where('id', '=', job.id)
      .executeTakeFirstOrThrow();
    await makeDue(ctx, [job.id]);
    await sweepExpiredJobs({ ...ctx.jobs, clock: { now: () => new Date(Date.now() + 60_000) } });
    const after = await ctx.db
      .selectFrom('jobs')
      .select(['status', 'completed_at', 'error'])
      .where('id', '=', job.id)
      .executeTakeFirstOrThrow();
    expect(after.status).toBe('expired');
    expect(after.completed_at).toEqual(before.completed_at);
    expect(after.error).toEqual({ code: 'e', message: 'm' });
  });

  it('works through a backlog in batches', async () => {
    const jobs = await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        seedJob(ctx, tenant.organizationId, { request: withDocument(100 + i) }),
      ),
    );
    await makeDue(
      ctx,
      jobs.map((j) => j.id),
    );
    const result = await sweepExpiredJobs(
      { ...ctx.jobs, clock: { now: () => new Date() } },
      { batchSize: 4 },
    );
    expect(result.expired).toBe(25);
    expect(result.objectsDeleted).toBe(25);
  });

  it('shares the work between two sweepers running at once: each job expires once, each object is deleted once', async () => {
    const jobs = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        seedJob(ctx, tenant.organizationId, { request: withDocument(1000 + i) }),
      ),
    );
    await makeDue(
      ctx,
      jobs.map((j) => j.id),
    );
    const sweep = () =>
      sweepExpiredJobs({ ...ctx.jobs, clock: { now: () => new Date() } }, { batchSize: 10 });
    const [a, b] = await Promise.all([sweep(), sweep()]);
    expect(a.expired + b.expired).toBe(120);
    expect(a.objectsDeleted + b.objectsDeleted).toBe(120);
    expect(a.objectsFailed + b.objectsFailed).toBe(0);
    const statuses = await ctx.db
      .selectFrom('jobs')
      .select('status')
      .where(
        'id',
        'in',
        jobs.map((j) => j.id),
      )
      .execute();
    expect(new Set(statuses.map((s) => s.status))).toEqual(new Set(['expired']));
    expect(await countRows(ctx, 'storage_deletions')).toBe(0);
  });

  it('answers 409 to cancel and retry of an expired job', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    await makeDue(ctx, [job.id]);
    await sweepExpiredJobs({ ...ctx.jobs, clock: { now: () => new Date() } });
    for (const action of ['cancel', 'retry']) {
      const res = await ctx.app.inject({
        method: 'POST',
        url: `/v1/jobs/${job.id}/${action}`,
        headers: { 'api-key': tenant.key },
      });
      expect(res.statusCode).toBe(409);
    }
  });

  it('ends the attempt of a job that expires while a worker runs it, and fences the worker out', async () => {
    const owner = await createWorkerTenant(ctx);
    const job = await seedJob(ctx, owner.organizationId);
    const worker = workerClient(ctx, owner.workerKey);
    const [claimed] = await claimOk(worker, { limit: 1 });
    expect(claimed.job.id).toBe(job.id);
    await makeDue(ctx, [job.id]);
    await sweepExpiredJobs({ ...ctx.jobs, clock: { now: () => new Date() } });

    const [attempt] = await attemptRows(ctx, job.id);
    expect(attempt).toMatchObject({ outcome: 'expired' });
    expect(attempt.finished_at).toBeInstanceOf(Date);
    const late = await worker.complete(job.id, {
      lease_token: claimed.lease_token,
      response: { status_code: 200, body: {} },
    });
    expect(late.statusCode).toBe(409);
    expect((await jobRow(ctx, job.id)).status).toBe('expired');
  });

  it('sets expires_at from JOB_RETENTION_SECONDS', async () => {
    const short = await createTestApp({ env: { JOB_RETENTION_SECONDS: '3600' } });
    try {
      const owner = await createTenant(short.db);
      const job = await seedJob(short, owner.organizationId);
      const body = (
        await short.app.inject({ url: `/v1/jobs/${job.id}`, headers: { 'api-key': owner.key } })
      ).json();
      expect(body.expires_at - body.created_at).toBe(3600);
    } finally {
      await short.close();
    }
  });
});

describe('expiry with a storage outage', () => {
  let gcs: FakeGcsServer;
  let ctx: TestContext;
  let tenant: Awaited<ReturnType<typeof createTenant>>;

  beforeAll(async () => {
    gcs = await startFakeGcsServer({ buckets: ['jobs'] });
    const store = new GcsObjectStore({
      bucket: 'jobs',
      prefix: 'a',
      apiEndpoint: gcs.url,
      projectId: 'test',
      maxRetries: 0,
    });
    ctx = await createTestApp({ store, env: { OFFLOAD_THRESHOLD_BYTES: '1024' } });
    tenant = await createTenant(ctx.db);
  });
  afterAll(async () => {
    await ctx.close();
    await gcs.stop();
  });

  it('keeps the deletions it could not do and does them at a later sweep', async () => {
    const job = await seedJob(ctx, tenant.organizationId, { request: withDocument(7) });
    await makeDue(ctx, [job.id]);
    const outage = gcs.faults.add({ op: 'delete', type: 'status', status: 503 });
    const first = await sweepExpiredJobs({ ...ctx.jobs, clock: { now: () => new Date() } });
    expect(first).toEqual({ expired: 1, abandoned: 0, objectsDeleted: 0, objectsFailed: 1 });
    expect(gcs.objects.names('jobs')).toHaveLength(1);
    const pending = await ctx.db.selectFrom('storage_deletions').selectAll().executeTakeFirstOrThrow();
    expect(pending).toMatchObject({ job_id: job.id, attempts: 1 });
    expect(pending.last_error).toBeTruthy();
    expect(pending.next_attempt_at.getTime()).toBeGreaterThan(Date.now());

    outage.remove();
    // Not due yet: nothing happens.
    expect((await sweepExpiredJobs({ ...ctx.jobs, clock: { now: () => new Date() } })).objectsDeleted).toBe(
      0,
    );
    const later = await sweepExpiredJobs({
      ...ctx.jobs,
      clock: { now: () => new Date(Date.now() + 3_600_000) },
    });
    expect(later.objectsDeleted).toBe(1);
    expect(gcs.objects.names('jobs')).toEqual([]);
    expect(await countRows(ctx, 'storage_deletions')).toBe(0);
  });

  it('queues the objects of a failed create that storage would not delete, and the sweeper removes them', async () => {
    gcs.reset();
    const putFault = gcs.faults.add({ op: 'put', type: 'status', status: 503, skip: 1 });
    const deleteFault = gcs.faults.add({ op: 'delete', type: 'status', status: 503 });
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { 'api-key': tenant.key, 'content-type': 'application/json' },
      payload: JSON.stringify({
        endpoint: '/v1/documents/classify',
        request: { documents: [withDocument(11).document, withDocument(12).document] },
      }),
    });
    expect(res.statusCode).toBe(503);
    expect(gcs.objects.names('jobs')).toHaveLength(1);
    expect(await countRows(ctx, 'storage_deletions')).toBe(1);
    putFault.remove();
    deleteFault.remove();
    const swept = await sweepExpiredJobs({ ...ctx.jobs, clock: { now: () => new Date() } });
    expect(swept.objectsDeleted).toBe(1);
    expect(gcs.objects.names('jobs')).toEqual([]);
  });
});
