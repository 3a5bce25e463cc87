import type { LightMyRequestResponse } from 'fastify';
import { reapExpiredLeases } from '../../src/workers/lease-reaper.js';
import { addKey, createTenant, type TestContext } from '../support/test-app.js';

/** Real time plus an offset the test moves forward: leases and backoffs run out on demand. */
export function testClock() {
  let offsetMs = 0;
  return {
    now: () => new Date(Date.now() + offsetMs),
    advance(seconds: number) {
      offsetMs += seconds * 1000;
    },
  };
}
export type TestClock = ReturnType<typeof testClock>;

/** Settings for worker tests: no background reaper tick during a test, known backoff bounds. */
export const WORKER_TEST_ENV = {
  REAPER_INTERVAL_SECONDS: '3600',
  RETRY_BASE_SECONDS: '10',
  RETRY_MAX_SECONDS: '40',
  LEASE_SECONDS: '30',
  MAX_LEASE_SECONDS: '600',
};

/** An organization with a worker key and a client key. */
export async function createWorkerTenant(ctx: TestContext) {
  const tenant = await createTenant(ctx.db, 'worker');
  const client = await addKey(ctx.db, tenant.organizationId, 'client');
  return { organizationId: tenant.organizationId, workerKey: tenant.key, clientKey: client.key };
}

/** The worker routes, called through app.inject with one key. */
export function workerClient(ctx: TestContext, key: string) {
  const post = (url: string, payload: unknown) =>
    ctx.app.inject({
      method: 'POST',
      url: `/v1/worker${url}`,
      headers: { 'api-key': key },
      payload: payload as Record<string, unknown>,
    });
  return {
    claim: (body: Record<string, unknown>) => post('/claim', { worker_id: 'worker-1', ...body }),
    reports: (reports: Record<string, unknown>[]) => post('/reports', { reports }),
    heartbeat: (jobId: string, body: Record<string, unknown>) => post(`/jobs/${jobId}/heartbeat`, body),
    complete: (jobId: string, body: Record<string, unknown>) => post(`/jobs/${jobId}/complete`, body),
    fail: (jobId: string, body: Record<string, unknown>) => post(`/jobs/${jobId}/fail`, body),
    cancelled: (jobId: string, body: Record<string, unknown>) => post(`/jobs/${jobId}/cancelled`, body),
    release: (jobId: string, body: Record<string, unknown>) => post(`/jobs/${jobId}/release`, body),
  };
}
export type WorkerClient = ReturnType<typeof workerClient>;

export interface Claimed {
  job: { id: string; request: unknown; attempt_count: number; status: string; endpoint: string } & Record<
    string,
    unknown
  >;
  lease_token: string;
  lease_expires_at: number;
}

/** Claims and expects a 200; answers the claimed entries. */
export async function claimOk(worker: WorkerClient, body: Record<string, unknown> = {}): Promise<Claimed[]> {
  const res = await worker.claim(body);
  if (res.statusCode !== 200) throw new Error(`claim answered ${res.statusCode}: ${res.body}`);
  return res.json().data;
}

export function reap(ctx: TestContext, clock: TestClock, batchSize = 100) {
  return reapExpiredLeases({ ...ctx.jobs, clock, config: { ...ctx.config, reaperBatchSize: batchSize } });
}

export async function jobRow(ctx: TestContext, jobId: string) {
  return ctx.db.selectFrom('jobs').selectAll().where('id', '=', jobId).executeTakeFirstOrThrow();
}

export async function attemptRows(ctx: TestContext, jobId: string) {
  return ctx.db
    .selectFrom('job_attempts')
    .selectAll()
    .where('job_id', '=', jobId)
    .orderBy('attempt')
    .execute();
}

export const errorCode = (res: LightMyRequestResponse) => res.json().detail.code as string;

/** Waits for a condition that another party makes true, checking every 10 ms, at most `ms`. */
export async function until(condition: () => boolean | Promise<boolean>, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
