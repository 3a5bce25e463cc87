import { beforeAll, describe, expect, it } from 'vitest';
import { seedJob } from '../support/job-factory.js';
import { createTenant, useTestApp } from '../support/test-app.js';
import {
  type Claimed,
  claimOk,
  createWorkerTenant,
  jobRow,
  workerClient,
} from '../workers/worker-helpers.js';

const ctx = useTestApp();
let tenant: Awaited<ReturnType<typeof createTenant>>;

beforeAll(async () => {
  tenant = await createTenant(ctx.db);
});

const act = (id: string, action: 'cancel' | 'retry', key = tenant.key) =>
  ctx.app.inject({ method: 'POST', url: `/v1/jobs/${id}/${action}`, headers: { 'api-key': key } });

describe('POST /v1/jobs/{job_id}/cancel', () => {
  it('cancels a queued job at once', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const res = await act(job.id, 'cancel');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: job.id, status: 'cancelled', cancelled: true, request: null });
    expect(Number.isInteger(res.json().completed_at)).toBe(true);
  });

  it('cancels a validating job at once', async () => {
    const job = await seedJob(ctx, tenant.organizationId, { status: 'validating' });
    expect((await act(job.id, 'cancel')).json()).toMatchObject({ status: 'cancelled', cancelled: true });
  });

  it('flags a running job and leaves it in_progress for its worker', async () => {
    const job = await seedJob(ctx, tenant.organizationId, { status: 'in_progress' });
    const res = await act(job.id, 'cancel');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'in_progress', cancelled: true, completed_at: null });
  });

  it('answers 409 the second time, changing nothing', async () => {
    for (const status of ['queued', 'in_progress'] as const) {
      const job = await seedJob(ctx, tenant.organizationId, { status });
      expect((await act(job.id, 'cancel')).statusCode).toBe(200);
      const before = await jobRow(ctx, job.id);
      const again = await act(job.id, 'cancel');
      expect(again.statusCode).toBe(409);
      expect(again.json().detail.code).toBe('conflict');
      expect(await jobRow(ctx, job.id)).toEqual(before);
    }
  });

  it.each(['completed', 'failed', 'expired'] as const)('answers 409 for a %s job', async (status) => {
    const job = await seedJob(ctx, tenant.organizationId, { status });
    const before = await jobRow(ctx, job.id);
    const res = await act(job.id, 'cancel');
    expect(res.statusCode).toBe(409);
    expect(res.json().detail).toMatchObject({ code: 'conflict', details: { status } });
    expect(res.json().detail.message).toBe(`Job '${job.id}' cannot be cancelled: it is ${status}.`);
    expect(await jobRow(ctx, job.id)).toEqual(before);
  });

  it("answers 404 for another organization's job and a missing one", async () => {
    const other = await createTenant(ctx.db);
    const job = await seedJob(ctx, tenant.organizationId);
    expect((await act(job.id, 'cancel', other.key)).statusCode).toBe(404);
    expect((await act('job_AAAAAAAAAAAAAAAAAAAAA', 'cancel')).statusCode).toBe(404);
    expect((await jobRow(ctx, job.id)).status).toBe('queued');
  });

  it('accepts a body-less POST with Content-Type: application/json', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const res = await ctx.app.inject({
      method: 'POST',
      url: `/v1/jobs/${job.id}/cancel`,
      headers: { 'api-key': tenant.key, 'content-type': 'application/json' },
      payload: '',
    });
    expect(res.statusCode).toBe(200);
  });

  it('lets exactly one of many concurrent cancels win', async () => {
    const job = await seedJob(ctx, tenant.organizationId, { status: 'in_progress' });
    const answers = await Promise.all(Array.from({ length: 10 }, () => act(job.id, 'cancel')));
    expect(answers.filter((a) => a.statusCode === 200)).toHaveLength(1);
    expect(answers.filter((a) => a.statusCode === 409)).toHaveLength(9);
  });
});

describe('cancel racing a worker', () => {
  it('ends a raced queued job either cancelled and unclaimed, or claimed and flagged', async () => {
    const owner = await createWorkerTenant(ctx);
    const worker = workerClient(ctx, owner.workerKey);
    for (let i = 0; i < 20; i++) {
      const job = await seedJob(ctx, owner.organizationId);
      const [cancelled, claim] = await Promise.all([
        act(job.id, 'cancel', owner.clientKey),
        worker.claim({ limit: 1 }),
      ]);
      expect(cancelled.statusCode).toBe(200);
      const claimedIds = claim.json().data.map((c: Claimed) => c.job.id);
      const final = await jobRow(ctx, job.id);
      if (claimedIds.includes(job.id)) {
        expect(final).toMatchObject({ status: 'in_progress', cancelled: true });
        // Leave nothing running for the next round.
        await worker.release(job.id, { lease_token: claim.json().data[0].lease_token });
      } else {
        expect(final).toMatchObject({ status: 'cancelled', cancelled: true });
      }
    }
  });

  it('ends a running job in exactly one terminal state when cancel and completion race; the loser gets 409', async () => {
    const owner = await createWorkerTenant(ctx);
    const worker = workerClient(ctx, owner.workerKey);
    for (let i = 0; i < 10; i++) {
      await seedJob(ctx, owner.organizationId);
      const [claimed] = await claimOk(worker, { limit: 1 });
      const id = claimed.job.id;
      // The client cancels while the worker reports both completion and the acknowledged
      // cancellation: only one of the two reports may end the job.
      await act(id, 'cancel', owner.clientKey);
      const [completed, acknowledged] = await Promise.all([
        worker.complete(id, {
          lease_token: claimed.lease_token,
          response: { status_code: 200, body: { n: i } },
        }),
        worker.cancelled(id, { lease_token: claimed.lease_token }),
      ]);
      const codes = [completed.statusCode, acknowledged.statusCode].sort();
      expect(codes).toEqual([200, 409]);
      const final = await jobRow(ctx, id);
      expect(final.status).toBe(completed.statusCode === 200 ? 'completed' : 'cancelled');
      expect((await act(id, 'cancel', owner.clientKey)).statusCode).toBe(409);
    }
  });
});

describe('POST /v1/jobs/{job_id}/retry', () => {
  it('puts a failed job back in the queue under the same id, keeping its history', async () => {
    const job = await seedJob(ctx, tenant.organizationId, {
      status: 'failed',
      error: { code: 'model_timeout', message: 'took too long' },
    });
    const res = await act(job.id, 'retry');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      id: job.id,
      status: 'queued',
      error: null,
      completed_at: null,
      attempt_count: 1,
      last_failure_code: 'model_timeout',
      cancelled: false,
    });
    expect((await jobRow(ctx, job.id)).run_after.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('puts a cancelled job back in the queue and clears the flag', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    await act(job.id, 'cancel');
    const res = await act(job.id, 'retry');
    expect(res.json()).toMatchObject({ status: 'queued', cancelled: false, completed_at: null });
  });

  it.each(['queued', 'in_progress', 'completed', 'expired'] as const)(
    'answers 409 for a %s job',
    async (status) => {
      const job = await seedJob(ctx, tenant.organizationId, { status });
      const before = await jobRow(ctx, job.id);
      const res = await act(job.id, 'retry');
      expect(res.statusCode).toBe(409);
      expect(res.json().detail.message).toBe(`Job '${job.id}' cannot be retried: it is ${status}.`);
      expect(await jobRow(ctx, job.id)).toEqual(before);
    },
  );

  it('requeues once when retried concurrently', async () => {
    const job = await seedJob(ctx, tenant.organizationId, {
      status: 'failed',
      error: { code: 'x', message: 'y' },
    });
    const answers = await Promise.all(Array.from({ length: 10 }, () => act(job.id, 'retry')));
    expect(answers.filter((a) => a.statusCode === 200)).toHaveLength(1);
  });
});
