import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import { type ObjectStore, StorageError, type StoredObject } from '../../src/storage/object-store.js';
import { dataUrl, seedJob } from '../support/job-factory.js';
import { useTestApp } from '../support/test-app.js';
import {
  attemptRows,
  type Claimed,
  claimOk,
  createWorkerTenant,
  jobRow,
  testClock,
  WORKER_TEST_ENV,
  type WorkerClient,
  workerClient,
} from './worker-helpers.js';

/** The file store, refusing every write of the jobs named in `refused`: storage down for them only. */
class RefusingStore extends FilesystemObjectStore {
  readonly refused = new Set<string>();
  override async put(
    key: string,
    bytes: Buffer,
    options: { contentType: string; signal?: AbortSignal },
  ): Promise<StoredObject> {
    if ([...this.refused].some((jobId) => key.includes(jobId)))
      throw new StorageError('refused by the test', key);
    return super.put(key, bytes, options);
  }
}

const clock = testClock();
const folder = mkdtempSync(path.join(os.tmpdir(), 'report-batch-'));
const store = new RefusingStore(folder);
afterAll(() => rm(folder, { recursive: true, force: true }));
const ctx = useTestApp({
  env: { ...WORKER_TEST_ENV, OFFLOAD_THRESHOLD_BYTES: '1024' },
  clock,
  store: store as ObjectStore,
});

let tenant: Awaited<ReturnType<typeof createWorkerTenant>>;
let worker: WorkerClient;
beforeEach(async () => {
  store.refused.clear();
  tenant = await createWorkerTenant(ctx);
  worker = workerClient(ctx, tenant.workerKey);
});

async function claimJobs(count: number): Promise<Claimed[]> {
  for (let i = 0; i < count; i++) await seedJob(ctx, tenant.organizationId, { maxAttempts: 3 });
  const claimed = await claimOk(worker, { limit: count });
  expect(claimed).toHaveLength(count);
  return claimed;
}

const OK = { status_code: 200, body: { total: 42 } };

describe('POST /v1/worker/reports', () => {
  it('applies every kind of report in one request, each as its single route would', async () => {
    const [beat, done, failed, acked, released] = await claimJobs(5);
    const cancel = await ctx.app.inject({
      method: 'POST',
      url: `/v1/jobs/${acked.job.id}/cancel`,
      headers: { 'api-key': tenant.clientKey },
    });
    expect(cancel.json()).toMatchObject({ status: 'in_progress', cancelled: true });
    const res = await worker.reports([
      { type: 'heartbeat', job_id: beat.job.id, lease_token: beat.lease_token, lease_seconds: 300 },
      { type: 'complete', job_id: done.job.id, lease_token: done.lease_token, response: OK },
      {
        type: 'fail',
        job_id: failed.job.id,
        lease_token: failed.lease_token,
        error: { code: 'boom', message: 'no' },
        retryable: false,
      },
      { type: 'cancelled', job_id: acked.job.id, lease_token: acked.lease_token },
      { type: 'release', job_id: released.job.id, lease_token: released.lease_token },
    ]);
    expect(res.statusCode).toBe(200);
    const data = res.json().data;
    expect(data.map((d: { status_code: number; type: string }) => [d.type, d.status_code])).toEqual([
      ['heartbeat', 200],
      ['complete', 200],
      ['fail', 200],
      ['cancelled', 200],
      ['release', 200],
    ]);
    expect(data[0].heartbeat).toEqual({ cancel_requested: false, lease_expires_at: expect.any(Number) });
    expect(
      data[0].heartbeat.lease_expires_at - Math.floor(clock.now().getTime() / 1000),
    ).toBeGreaterThanOrEqual(299);
    expect(data.slice(1).map((d: { job: { status: string } }) => d.job.status)).toEqual([
      'completed',
      'failed',
      'cancelled',
      'queued',
    ]);
    expect((await jobRow(ctx, done.job.id)).response).toEqual(OK);
    expect((await jobRow(ctx, failed.job.id)).error).toEqual({ code: 'boom', message: 'no' });
    const outcomes = await Promise.all(
      [done, failed, acked, released].map(async (c) =>
        (await attemptRows(ctx, c.job.id)).map((a) => a.outcome),
      ),
    );
    expect(outcomes).toEqual([['succeeded'], ['failed'], ['cancelled'], ['released']]);
  });

  it('answers a stale, a foreign and a malformed report alone; the others apply', async () => {
    const [stale, good] = await claimJobs(2);
    const other = await createWorkerTenant(ctx);
    await seedJob(ctx, other.organizationId);
    const [foreign] = await claimOk(workerClient(ctx, other.workerKey));
    const res = await worker.reports([
      {
        type: 'complete',
        job_id: stale.job.id,
        lease_token: '00000000-0000-4000-8000-000000000000',
        response: OK,
      },
      { type: 'complete', job_id: foreign.job.id, lease_token: foreign.lease_token, response: OK },
      {
        type: 'fail',
        job_id: good.job.id,
        lease_token: good.lease_token,
        error: { code: 'x' },
        retryable: true,
      },
      { type: 'complete', job_id: good.job.id, lease_token: good.lease_token, response: OK },
      { type: 'explode', job_id: good.job.id },
    ]);
    const data = res.json().data;
    expect(
      data.map((d: { status_code: number; error: { code: string } | null }) => [
        d.status_code,
        d.error?.code ?? null,
      ]),
    ).toEqual([
      [409, 'conflict'],
      [404, 'not_found'],
      [400, 'invalid_request'],
      [200, null],
      [400, 'invalid_request'],
    ]);
    expect(data[2].error.message).toBe("Invalid report field 'error.message': is required.");
    expect(data[4].error.message).toBe(
      "Invalid report field 'type': must be one of: heartbeat, complete, fail, cancelled, release.",
    );
    expect((await jobRow(ctx, stale.job.id)).status).toBe('in_progress');
    expect((await jobRow(ctx, foreign.job.id)).status).toBe('in_progress');
    expect((await jobRow(ctx, good.job.id)).status).toBe('completed');
  });

  it('refuses a second report of the same job in one batch', async () => {
    const [claimed] = await claimJobs(1);
    const res = await worker.reports([
      { type: 'heartbeat', job_id: claimed.job.id, lease_token: claimed.lease_token },
      { type: 'complete', job_id: claimed.job.id, lease_token: claimed.lease_token, response: OK },
    ]);
    expect(res.json().data.map((d: { status_code: number }) => d.status_code)).toEqual([200, 400]);
    expect((await jobRow(ctx, claimed.job.id)).status).toBe('in_progress');
  });

  it('answers 503 for the one response storage refuses; the other 99 complete', async () => {
    const claimed = await claimJobs(100);
    const refused = claimed[37].job.id;
    store.refused.add(refused);
    const big = { status_code: 200, body: { image: dataUrl(4000, 'image/png', 5).url } };
    const res = await worker.reports(
      claimed.map((c) => ({ type: 'complete', job_id: c.job.id, lease_token: c.lease_token, response: big })),
    );
    const data = res.json().data;
    expect(data.filter((d: { status_code: number }) => d.status_code === 200)).toHaveLength(99);
    expect(data[37]).toMatchObject({
      job_id: refused,
      status_code: 503,
      error: { code: 'service_unavailable' },
    });
    expect((await jobRow(ctx, refused)).lease_token).toBe(claimed[37].lease_token);
    const restored = await ctx.app.inject({
      url: `/v1/jobs/${claimed[0].job.id}?include_response=true`,
      headers: { 'api-key': tenant.clientKey },
    });
    expect(restored.json().response).toEqual(big);
  });

  it('answers a resent batch with the same jobs and changes nothing', async () => {
    const claimed = await claimJobs(4);
    const reports = [
      { type: 'complete', job_id: claimed[0].job.id, lease_token: claimed[0].lease_token, response: OK },
      {
        type: 'fail',
        job_id: claimed[1].job.id,
        lease_token: claimed[1].lease_token,
        error: { code: 'e', message: 'm' },
        retryable: true,
      },
      { type: 'release', job_id: claimed[2].job.id, lease_token: claimed[2].lease_token },
      { type: 'complete', job_id: claimed[3].job.id, lease_token: claimed[3].lease_token, response: OK },
    ];
    const first = (await worker.reports(reports)).json().data;
    const rows = await Promise.all(claimed.map((c) => jobRow(ctx, c.job.id)));
    const second = (await worker.reports(reports)).json().data;
    expect(second).toEqual(first);
    expect(await Promise.all(claimed.map((c) => jobRow(ctx, c.job.id)))).toEqual(rows);
    for (const c of claimed) expect(await attemptRows(ctx, c.job.id)).toHaveLength(1);
  });

  it('tells each heartbeat whether its job is being cancelled', async () => {
    const [kept, cancelled] = await claimJobs(2);
    await ctx.app.inject({
      method: 'POST',
      url: `/v1/jobs/${cancelled.job.id}/cancel`,
      headers: { 'api-key': tenant.clientKey },
    });
    const res = await worker.reports(
      [kept, cancelled].map((c) => ({ type: 'heartbeat', job_id: c.job.id, lease_token: c.lease_token })),
    );
    expect(
      res.json().data.map((d: { heartbeat: { cancel_requested: boolean } }) => d.heartbeat.cancel_requested),
    ).toEqual([false, true]);
  });

  it('answers 400 for a body that is not a list of 1 to 100 reports', async () => {
    for (const body of [
      {},
      { reports: [] },
      { reports: Array.from({ length: 101 }, () => ({})) },
      { reports: [1] },
    ]) {
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/v1/worker/reports',
        headers: { 'api-key': tenant.workerKey },
        payload: body,
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().detail.code).toBe('invalid_request');
    }
  });
});
