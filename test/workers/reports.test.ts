import { beforeEach, describe, expect, it } from 'vitest';
import { dataUrl, seedJob } from '../support/job-factory.js';
import { useTestApp } from '../support/test-app.js';
import {
  attemptRows,
  type Claimed,
  claimOk,
  createWorkerTenant,
  errorCode,
  jobRow,
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
});

const clientGet = (url: string, key = tenant.clientKey) =>
  ctx.app.inject({ method: 'GET', url, headers: { 'api-key': key } });
const clientPost = (url: string) =>
  ctx.app.inject({ method: 'POST', url, headers: { 'api-key': tenant.clientKey } });

async function claimOne(options: { maxAttempts?: number } = {}): Promise<Claimed> {
  const job = await seedJob(ctx, tenant.organizationId, options);
  const [claimed] = await claimOk(worker);
  expect(claimed.job.id).toBe(job.id);
  return claimed;
}

const seconds = (d: Date | null) => (d === null ? null : Math.floor(d.getTime() / 1000));
const OK = { status_code: 200, body: { fields: { total: 42 } } };

describe('POST /v1/worker/jobs/{job_id}/heartbeat', () => {
  it('extends the lease and says whether cancellation was asked', async () => {
    const { job, lease_token } = await claimOne();
    const before = seconds(clock.now()) as number;
    const res = await worker.heartbeat(job.id, { lease_token, lease_seconds: 300 });
    expect(res.statusCode).toBe(200);
    expect(res.json().cancel_requested).toBe(false);
    expect(res.json().lease_expires_at - before).toBeGreaterThanOrEqual(299);
    expect(res.json().lease_expires_at - before).toBeLessThanOrEqual(301);
    expect(seconds((await jobRow(ctx, job.id)).lease_expires_at)).toBe(res.json().lease_expires_at);
  });

  it('renews a lease that ran out while the reaper has not taken it back', async () => {
    const { job, lease_token } = await claimOne();
    clock.advance(60);
    const res = await worker.heartbeat(job.id, { lease_token });
    expect(res.statusCode).toBe(200);
    expect(res.json().lease_expires_at).toBeGreaterThan(seconds(clock.now()) as number);
  });

  it('answers 400 for a missing or malformed lease_token, a bad job id, or lease_seconds out of bounds', async () => {
    const { job, lease_token } = await claimOne();
    const cases = [
      [job.id, {}, 'lease_token'],
      [job.id, { lease_token: 'not-a-uuid' }, 'lease_token'],
      [job.id, { lease_token, lease_seconds: 0 }, 'lease_seconds'],
      [job.id, { lease_token, lease_seconds: 601 }, 'lease_seconds'],
      ['job_short', { lease_token }, 'job_id'],
    ] as const;
    for (const [id, body, field] of cases) {
      const res = await worker.heartbeat(id, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().detail.details.field).toBe(field);
    }
    for (const report of [worker.complete, worker.fail, worker.cancelled, worker.release]) {
      const res = await report(job.id, {});
      expect(res.statusCode).toBe(400);
      expect(res.json().detail.details.field).toBe('lease_token');
    }
  });
});

describe('POST /v1/worker/jobs/{job_id}/complete', () => {
  it('completes the job; the response, offloaded when large, reads back whole', async () => {
    const { job, lease_token } = await claimOne();
    const page = dataUrl(30_000, 'image/png', 3);
    const response = { status_code: 200, body: { pages: [{ image: page.url }], text: 'hello' } };
    const warnings = [{ code: 'low_confidence', message: 'Field total is uncertain.' }];
    const res = await worker.complete(job.id, { lease_token, response, warnings });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      id: job.id,
      status: 'completed',
      request: null,
      response: null,
      error: null,
      warnings,
      attempt_count: 1,
    });
    expect(res.json().completed_at).toEqual(expect.any(Number));

    const artifacts = await ctx.db
      .selectFrom('job_artifacts')
      .selectAll()
      .where('job_id', '=', job.id)
      .where('role', '=', 'response')
      .execute();
    expect(artifacts.map((a) => a.pointer)).toEqual(['/body/pages/0/image']);
    // Under the lease's folder, in a folder of this report's own.
    expect(artifacts[0].storage_uri).toMatch(
      new RegExp(`/${job.id}/${lease_token}/[A-Za-z0-9_-]{8}/response/0\\.bin$`),
    );
    const row = await jobRow(ctx, job.id);
    expect(JSON.stringify(row.response)).not.toContain('base64');
    expect(row).toMatchObject({ lease_token: null, lease_owner: null, lease_expires_at: null });

    const read = await clientGet(`/v1/jobs/${job.id}?include_response=true`);
    expect(read.json().response).toEqual(response);
    expect((await attemptRows(ctx, job.id)).map((a) => a.outcome)).toEqual(['succeeded']);
  });

  it('answers 409 to a different second report and changes nothing', async () => {
    const { job, lease_token } = await claimOne();
    expect((await worker.complete(job.id, { lease_token, response: OK })).statusCode).toBe(200);
    const before = await jobRow(ctx, job.id);
    for (const res of [
      await worker.fail(job.id, { lease_token, error: { code: 'x', message: 'y' }, retryable: true }),
      await worker.heartbeat(job.id, { lease_token }),
      await worker.release(job.id, { lease_token }),
      await worker.cancelled(job.id, { lease_token }),
    ]) {
      expect(res.statusCode).toBe(409);
      expect(res.json().detail).toMatchObject({ code: 'conflict', details: { status: 'completed' } });
    }
    expect(await jobRow(ctx, job.id)).toEqual(before);
  });

  it('answers a resent complete of the same lease with the job, keeping the first result', async () => {
    const { job, lease_token } = await claimOne();
    const first = await worker.complete(job.id, { lease_token, response: OK });
    expect(first.statusCode).toBe(200);
    const before = await jobRow(ctx, job.id);
    const resent = await worker.complete(job.id, { lease_token, response: { status_code: 500, body: {} } });
    expect(resent.statusCode).toBe(200);
    expect(resent.json()).toEqual(first.json());
    expect(await jobRow(ctx, job.id)).toEqual(before);
    expect((await attemptRows(ctx, job.id)).map((a) => a.outcome)).toEqual(['succeeded']);
  });

  it('keeps the offloaded response of the first complete when the same report is resent', async () => {
    const { job, lease_token } = await claimOne();
    const image = dataUrl(5000, 'image/png', 3).url;
    const report = { lease_token, response: { status_code: 200, body: { image } } };
    expect((await worker.complete(job.id, report)).statusCode).toBe(200);
    expect((await worker.complete(job.id, report)).statusCode).toBe(200);
    const read = await clientGet(`/v1/jobs/${job.id}?include_response=true`);
    expect(read.json().warnings).toBeNull();
    expect(read.json().response).toEqual(report.response);
  });

  it('answers a resent fail of the same lease with the job, recording the failure once', async () => {
    const { job, lease_token } = await claimOne();
    const failure = { lease_token, error: { code: 'boom', message: 'no' }, retryable: false };
    expect((await worker.fail(job.id, failure)).statusCode).toBe(200);
    const before = await jobRow(ctx, job.id);
    const resent = await worker.fail(job.id, failure);
    expect(resent.statusCode).toBe(200);
    expect(resent.json()).toMatchObject({ id: job.id, status: 'failed' });
    expect(await jobRow(ctx, job.id)).toEqual(before);
    expect((await attemptRows(ctx, job.id)).map((a) => a.outcome)).toEqual(['failed']);
  });

  it("answers 404 for another organization's job, even with its lease token", async () => {
    const { job, lease_token } = await claimOne();
    const other = workerClient(ctx, (await createWorkerTenant(ctx)).workerKey);
    for (const res of [
      await other.heartbeat(job.id, { lease_token }),
      await other.complete(job.id, { lease_token, response: OK }),
      await other.fail(job.id, { lease_token, error: { code: 'x', message: 'y' }, retryable: false }),
      await other.cancelled(job.id, { lease_token }),
      await other.release(job.id, { lease_token }),
    ]) {
      expect(res.statusCode).toBe(404);
      expect(errorCode(res)).toBe('not_found');
    }
    expect((await jobRow(ctx, job.id)).status).toBe('in_progress');
  });
});

describe('POST /v1/worker/jobs/{job_id}/fail', () => {
  const error = {
    code: 'upstream_timeout',
    message: 'The model did not answer.',
    details: { after_ms: 30000 },
  };

  it('queues a retryable failure again, run_after within the backoff bounds', async () => {
    const { job, lease_token } = await claimOne();
    const before = clock.now().getTime();
    const res = await worker.fail(job.id, { lease_token, error, retryable: true });
    const after = clock.now().getTime();
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      status: 'queued',
      error: null,
      last_failure_code: 'upstream_timeout',
    });
    const row = await jobRow(ctx, job.id);
    // RETRY_BASE_SECONDS=10, first failure: equal jitter in [5 s, 10 s].
    expect(row.run_after.getTime()).toBeGreaterThanOrEqual(before + 5_000);
    expect(row.run_after.getTime()).toBeLessThanOrEqual(after + 10_000);
    expect(row).toMatchObject({
      lease_token: null,
      lease_owner: null,
      lease_expires_at: null,
      completed_at: null,
    });
    expect(await attemptRows(ctx, job.id)).toMatchObject([{ attempt: 1, outcome: 'failed', error }]);
    expect(await claimOk(worker)).toEqual([]);
  });

  it('doubles the backoff up to RETRY_MAX_SECONDS, then fails once attempts are used up', async () => {
    const { job, lease_token } = await claimOne({ maxAttempts: 4 });
    let token = lease_token;
    const bounds = [
      [5, 10],
      [10, 20],
      [20, 40],
    ];
    for (const [low, high] of bounds) {
      const before = clock.now().getTime();
      const res = await worker.fail(job.id, { lease_token: token, error, retryable: true });
      const after = clock.now().getTime();
      expect(res.json().status).toBe('queued');
      const runAfter = (await jobRow(ctx, job.id)).run_after.getTime();
      expect(runAfter).toBeGreaterThanOrEqual(before + low * 1000);
      expect(runAfter).toBeLessThanOrEqual(after + high * 1000);
      clock.advance(high + 1);
      const [again] = await claimOk(worker);
      expect(again.job.id).toBe(job.id);
      token = again.lease_token;
    }
    const last = await worker.fail(job.id, { lease_token: token, error, retryable: true });
    expect(last.json()).toMatchObject({
      status: 'failed',
      error,
      last_failure_code: 'upstream_timeout',
      attempt_count: 4,
    });
    expect(last.json().completed_at).toEqual(expect.any(Number));
    const attempts = await attemptRows(ctx, job.id);
    expect(attempts.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
      [3, 'failed'],
      [4, 'failed'],
    ]);
    expect(attempts.every((a) => a.finished_at !== null)).toBe(true);
  });

  it('fails a non-retryable failure at once, attempts left or not', async () => {
    const { job, lease_token } = await claimOne({ maxAttempts: 5 });
    const invalid = { code: 'invalid_document', message: 'Not a PDF.' };
    const res = await worker.fail(job.id, { lease_token, error: invalid, retryable: false });
    expect(res.json()).toMatchObject({
      status: 'failed',
      error: invalid,
      last_failure_code: 'invalid_document',
    });
    expect((await jobRow(ctx, job.id)).attempt_count).toBe(1);
  });

  it('answers 400 for a failure without error code or retryable flag', async () => {
    const { job, lease_token } = await claimOne();
    for (const body of [
      { lease_token, error: { message: 'no code' }, retryable: true },
      { lease_token, error },
    ]) {
      expect((await worker.fail(job.id, body)).statusCode).toBe(400);
    }
  });
});

describe('cancellation of a running job', () => {
  it('heartbeat says cancel_requested, the worker acknowledges, the job ends cancelled', async () => {
    const { job, lease_token } = await claimOne();
    const early = await worker.cancelled(job.id, { lease_token });
    expect(early.statusCode).toBe(409);

    const cancel = await clientPost(`/v1/jobs/${job.id}/cancel`);
    expect(cancel.statusCode).toBe(200);
    expect(cancel.json()).toMatchObject({ status: 'in_progress', cancelled: true });

    const beat = await worker.heartbeat(job.id, { lease_token });
    expect(beat.json().cancel_requested).toBe(true);
    const res = await worker.cancelled(job.id, { lease_token });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'cancelled', cancelled: true, error: null });
    expect(res.json().completed_at).toEqual(expect.any(Number));
    expect((await attemptRows(ctx, job.id)).map((a) => a.outcome)).toEqual(['cancelled']);
  });

  it('a retryable failure of a job being cancelled ends it cancelled instead of queued', async () => {
    const { job, lease_token } = await claimOne();
    await clientPost(`/v1/jobs/${job.id}/cancel`);
    const res = await worker.fail(job.id, {
      lease_token,
      error: { code: 'interrupted', message: 'Stopped.' },
      retryable: true,
    });
    expect(res.json()).toMatchObject({ status: 'cancelled', last_failure_code: 'interrupted' });
  });
});

describe('POST /v1/worker/jobs/{job_id}/release', () => {
  it('queues the job again at once; released attempts do not use up max_attempts', async () => {
    const first = await claimOne({ maxAttempts: 2 });
    const jobId = first.job.id;
    const released = await worker.release(jobId, { lease_token: first.lease_token });
    expect(released.json()).toMatchObject({ status: 'queued', attempt_count: 1 });
    const row = await jobRow(ctx, jobId);
    expect(row.run_after.getTime()).toBeLessThanOrEqual(clock.now().getTime());
    expect(row).toMatchObject({ lease_token: null, lease_owner: null });

    const error = { code: 'flaky', message: 'Try again.' };
    const [second] = await claimOk(worker);
    expect(second.job).toMatchObject({ id: jobId, attempt_count: 2 });
    const retried = await worker.fail(jobId, { lease_token: second.lease_token, error, retryable: true });
    expect(retried.json().status).toBe('queued');
    clock.advance(60);
    const [third] = await claimOk(worker);
    const failed = await worker.fail(jobId, { lease_token: third.lease_token, error, retryable: true });
    expect(failed.json()).toMatchObject({ status: 'failed', attempt_count: 3 });

    const attempts = await attemptRows(ctx, jobId);
    expect(attempts.map((a) => [a.attempt, a.outcome, a.lease_token])).toEqual([
      [1, 'released', first.lease_token],
      [2, 'failed', second.lease_token],
      [3, 'failed', third.lease_token],
    ]);
  });
});

describe('GET /v1/jobs/{job_id}/attempts', () => {
  it("lists the job's attempts for its organization's client keys, without lease tokens", async () => {
    const { job, lease_token } = await claimOne();
    await worker.fail(job.id, { lease_token, error: { code: 'boom', message: 'Broke.' }, retryable: true });
    clock.advance(60);
    await claimOk(worker, { worker_id: 'worker-2' });

    const res = await clientGet(`/v1/jobs/${job.id}/attempts`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.object).toBe('list');
    expect(body.data).toMatchObject([
      {
        object: 'job.attempt',
        attempt: 1,
        worker_id: 'worker-1',
        outcome: 'failed',
        error: { code: 'boom' },
      },
      {
        object: 'job.attempt',
        attempt: 2,
        worker_id: 'worker-2',
        outcome: null,
        finished_at: null,
        error: null,
      },
    ]);
    expect(body.data[0].finished_at).toBeGreaterThanOrEqual(body.data[0].started_at);
    expect(JSON.stringify(body)).not.toContain(lease_token);
  });

  it('answers 404 for a missing job or one of another organization, and 403 to a worker key', async () => {
    const { job } = await claimOne();
    const other = await createWorkerTenant(ctx);
    expect((await clientGet(`/v1/jobs/${job.id}/attempts`, other.clientKey)).statusCode).toBe(404);
    expect((await clientGet('/v1/jobs/job_V1StGXR8_Z5jdHi6B-myT/attempts')).statusCode).toBe(404);
    expect((await clientGet(`/v1/jobs/${job.id}/attempts`, tenant.workerKey)).statusCode).toBe(403);
    expect((await clientGet(`/v1/jobs/${job.id}/attempts`)).json().data).toHaveLength(1);
  });
});
