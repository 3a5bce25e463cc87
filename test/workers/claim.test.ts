import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dataUrl, seedJob } from '../support/job-factory.js';
import { useTestApp } from '../support/test-app.js';
import {
  attemptRows,
  claimOk,
  createWorkerTenant,
  errorCode,
  jobRow,
  testClock,
  until,
  WORKER_TEST_ENV,
  type WorkerClient,
  workerClient,
} from './worker-helpers.js';

const clock = testClock();
const ctx = useTestApp({ env: { ...WORKER_TEST_ENV, OFFLOAD_THRESHOLD_BYTES: '1024' }, clock });
let subscriptions = 0;

beforeAll(() => {
  // Counts the claim waits in progress; the listener itself stays the real one.
  const subscribe = ctx.listener.subscribe.bind(ctx.listener);
  ctx.listener.subscribe = (channel, onNotify) => {
    subscriptions++;
    const off = subscribe(channel, onNotify);
    return () => {
      subscriptions--;
      off();
    };
  };
});

let tenant: Awaited<ReturnType<typeof createWorkerTenant>>;
let worker: WorkerClient;
beforeEach(async () => {
  // A new organization per test: its queue starts empty.
  tenant = await createWorkerTenant(ctx);
  worker = workerClient(ctx, tenant.workerKey);
});

const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000);

describe('POST /v1/worker/claim', () => {
  it('answers the oldest job with its fully restored request, a lease token and the lease end', async () => {
    const pdf = dataUrl(50_000, 'application/pdf', 7);
    const request = { document: { filename: 'big.pdf', url: pdf.url }, model: 'retab-small' };
    const job = await seedJob(ctx, tenant.organizationId, { request });
    expect(job.request_gcs_paths).not.toBeNull();

    const before = Math.floor(clock.now().getTime() / 1000);
    const [claimed, ...rest] = await claimOk(worker, { worker_id: 'host-a:42', lease_seconds: 120 });
    expect(rest).toEqual([]);
    expect(claimed.job).toMatchObject({
      id: job.id,
      object: 'job',
      status: 'in_progress',
      request,
      response: null,
      attempt_count: 1,
      cancelled: false,
    });
    expect(claimed.job.started_at).toBeGreaterThanOrEqual(before);
    expect(claimed.job.last_attempt_at).toBe(claimed.job.started_at);
    expect(claimed.lease_token).toMatch(/^[0-9a-f-]{36}$/);
    expect(claimed.lease_expires_at - before).toBeGreaterThanOrEqual(119);
    expect(claimed.lease_expires_at - before).toBeLessThanOrEqual(121);

    const row = await jobRow(ctx, job.id);
    expect(row).toMatchObject({
      status: 'in_progress',
      lease_owner: 'host-a:42',
      lease_token: claimed.lease_token,
    });
    const attempts = await attemptRows(ctx, job.id);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({
      attempt: 1,
      worker_id: 'host-a:42',
      lease_token: claimed.lease_token,
      outcome: null,
      finished_at: null,
    });
  });

  it('claims oldest first, up to limit, each job once', async () => {
    const jobs = [];
    for (let i = 0; i < 5; i++)
      jobs.push(await seedJob(ctx, tenant.organizationId, { at: minutesAgo(10 - i) }));
    const first = await claimOk(worker, { limit: 3 });
    expect(first.map((c) => c.job.id)).toEqual(jobs.slice(0, 3).map((j) => j.id));
    expect(new Set(first.map((c) => c.lease_token)).size).toBe(3);
    const second = await claimOk(worker, { limit: 3 });
    expect(second.map((c) => c.job.id)).toEqual(jobs.slice(3).map((j) => j.id));
    expect(await claimOk(worker, { limit: 3 })).toEqual([]);
  });

  it('claims only the endpoints asked for, with or without the /v1 prefix', async () => {
    const extract = await seedJob(ctx, tenant.organizationId, { at: minutesAgo(3) });
    const parse = await seedJob(ctx, tenant.organizationId, {
      endpoint: '/v1/documents/parse',
      at: minutesAgo(2),
    });
    const split = await seedJob(ctx, tenant.organizationId, {
      endpoint: '/v1/documents/split',
      at: minutesAgo(1),
    });

    const claimed = await claimOk(worker, {
      limit: 10,
      endpoints: ['documents/parse', '/v1/documents/split'],
    });
    expect(claimed.map((c) => c.job.id)).toEqual([parse.id, split.id]);
    expect((await jobRow(ctx, extract.id)).status).toBe('queued');
    const rest = await claimOk(worker, { limit: 10, endpoints: ['/documents/extract'] });
    expect(rest.map((c) => c.job.id)).toEqual([extract.id]);
  });

  it('skips jobs whose run_after has not come yet', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    await ctx.db
      .updateTable('jobs')
      .set({ run_after: new Date(Date.now() + 3_600_000) })
      .where('id', '=', job.id)
      .execute();
    expect(await claimOk(worker)).toEqual([]);
  });

  it("never hands a worker another organization's jobs", async () => {
    const other = await createWorkerTenant(ctx);
    const foreign = await seedJob(ctx, other.organizationId);
    expect(await claimOk(worker, { limit: 100 })).toEqual([]);
    expect((await jobRow(ctx, foreign.id)).status).toBe('queued');
  });

  it('answers 403 to a client key and 401 without a key', async () => {
    const client = workerClient(ctx, tenant.clientKey);
    const res = await client.claim({});
    expect(res.statusCode).toBe(403);
    expect(errorCode(res)).toBe('forbidden');
    for (const url of ['/v1/worker/jobs/job_V1StGXR8_Z5jdHi6B-myT/heartbeat', '/v1/worker/claim']) {
      const anonymous = await ctx.app.inject({ method: 'POST', url, payload: {} });
      expect(anonymous.statusCode).toBe(401);
    }
  });

  it.each([
    ['limit 0', { limit: 0 }, 'limit'],
    ['limit over 100', { limit: 101 }, 'limit'],
    ['lease_seconds 0', { lease_seconds: 0 }, 'lease_seconds'],
    ['lease_seconds over MAX_LEASE_SECONDS', { lease_seconds: 601 }, 'lease_seconds'],
    ['wait_seconds over 30', { wait_seconds: 31 }, 'wait_seconds'],
    ['an empty worker_id', { worker_id: '' }, 'worker_id'],
    ['a string limit', { limit: '5' }, 'limit'],
  ])('answers 400 for %s', async (_name, body, field) => {
    await seedJob(ctx, tenant.organizationId);
    const res = await worker.claim(body);
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toMatchObject({ code: 'invalid_request', details: { field } });
  });

  it('answers 400 for a missing worker_id, an unknown endpoint, and no body', async () => {
    const missing = await ctx.app.inject({
      method: 'POST',
      url: '/v1/worker/claim',
      headers: { 'api-key': tenant.workerKey },
      payload: { limit: 1 },
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().detail.details.field).toBe('worker_id');
    const unknown = await worker.claim({ endpoints: ['/v1/not/an/endpoint'] });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().detail.details.field).toBe('endpoints');
    const empty = await ctx.app.inject({
      method: 'POST',
      url: '/v1/worker/claim',
      headers: { 'api-key': tenant.workerKey, 'content-type': 'application/json' },
      payload: '',
    });
    expect(empty.statusCode).toBe(400);
  });
});

describe('POST /v1/worker/claim with wait_seconds', () => {
  it('answers at once when a job is runnable', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const started = Date.now();
    const claimed = await claimOk(worker, { wait_seconds: 10 });
    expect(claimed.map((c) => c.job.id)).toEqual([job.id]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('returns early with a job queued while it waits', async () => {
    const started = Date.now();
    const pending = claimOk(worker, { wait_seconds: 10, endpoints: ['/v1/documents/parse'] });
    await until(() => subscriptions === 1);
    const job = await seedJob(ctx, tenant.organizationId, { endpoint: '/v1/documents/parse' });
    const claimed = await pending;
    expect(claimed.map((c) => c.job.id)).toEqual([job.id]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(subscriptions).toBe(0);
  });

  it('returns an empty list at the deadline when only other endpoints or organizations get jobs', async () => {
    const other = await createWorkerTenant(ctx);
    const started = Date.now();
    const pending = claimOk(worker, { wait_seconds: 1, endpoints: ['/v1/documents/parse'] });
    await until(() => subscriptions === 1);
    const otherEndpoint = await seedJob(ctx, tenant.organizationId, {
      endpoint: '/v1/documents/split',
    });
    const otherOrganization = await seedJob(ctx, other.organizationId, {
      endpoint: '/v1/documents/parse',
    });
    expect(await pending).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect((await jobRow(ctx, otherEndpoint.id)).status).toBe('queued');
    expect((await jobRow(ctx, otherOrganization.id)).status).toBe('queued');
  });

  it('stops waiting when the client hangs up, and claims nothing afterwards', async () => {
    await ctx.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = ctx.app.server.address() as AddressInfo;
    const request = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/v1/worker/claim',
      headers: { 'api-key': tenant.workerKey, 'content-type': 'application/json' },
    });
    request.on('error', () => {});
    request.end(JSON.stringify({ worker_id: 'gone', wait_seconds: 30 }));
    await until(() => subscriptions === 1);
    request.destroy();
    await until(() => subscriptions === 0);

    const job = await seedJob(ctx, tenant.organizationId);
    expect((await jobRow(ctx, job.id)).status).toBe('queued');
    expect(await attemptRows(ctx, job.id)).toEqual([]);
  });
});

describe('OpenAPI', () => {
  it('documents the worker routes and the attempts route with their bounds', async () => {
    const doc = (await ctx.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    for (const path of [
      '/v1/worker/claim',
      '/v1/worker/jobs/{job_id}/heartbeat',
      '/v1/worker/jobs/{job_id}/complete',
      '/v1/worker/jobs/{job_id}/fail',
      '/v1/worker/jobs/{job_id}/cancelled',
      '/v1/worker/jobs/{job_id}/release',
    ]) {
      expect(doc.paths[path]?.post, path).toBeDefined();
    }
    expect(doc.paths['/v1/jobs/{job_id}/attempts'].get).toBeDefined();
    const claim = doc.paths['/v1/worker/claim'].post.requestBody.content['application/json'].schema;
    expect(claim.properties.lease_seconds.maximum).toBe(600);
  });
});
