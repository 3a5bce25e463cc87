import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createWorker,
  type FetchLike,
  type Job,
  JobCancelledError,
  type JobHandler,
  JobsClient,
  LeaseLostError,
  NonRetryableError,
  toJobResponse,
  type Worker,
  type WorkerOptions,
  WorkerShutdownError,
} from '../../sdk/src/index.js';
import { reapExpiredLeases } from '../../src/workers/lease-reaper.js';
import {
  createSdkTenant,
  gate,
  memoryLogger,
  parseRequest,
  type SdkServer,
  startSdkServer,
  stopSdkServer,
  until,
} from './sdk-helpers.js';

/** Real time plus an offset the lease-loss test moves forward. */
let offsetMs = 0;
const clock = { now: () => new Date(Date.now() + offsetMs) };

let server: SdkServer;
const running: Worker[] = [];

beforeAll(async () => {
  // Short retry backoffs (0.5 to 1 s) so a retried job comes back within the test.
  server = await startSdkServer({ env: { RETRY_BASE_SECONDS: '1', RETRY_MAX_SECONDS: '1' }, clock });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((worker) => worker.stop({ graceSeconds: 0 })));
});
afterAll(() => stopSdkServer(server));

/** A tenant of its own per test, with a client, and a worker factory bound to it. */
async function setup() {
  const tenant = await createSdkTenant(server.ctx);
  const client = new JobsClient({ apiKey: tenant.clientKey, baseUrl: server.baseUrl });
  const log = memoryLogger();
  const start = (options: Partial<WorkerOptions> & Pick<WorkerOptions, 'endpoints'>) => {
    const worker = createWorker({
      apiKey: tenant.workerKey,
      baseUrl: server.baseUrl,
      handleSignals: false,
      waitSeconds: 5,
      heartbeatIntervalSeconds: 0.1,
      logger: log.logger,
      ...options,
    });
    running.push(worker);
    const stopped = worker.start();
    return { worker, stopped };
  };
  const create = (text: string, options: { max_attempts?: number } = {}) =>
    client.jobs.create({ endpoint: '/v1/documents/parse', request: parseRequest(text), ...options });
  const settle = (id: string) => client.jobs.waitForCompletion(id, { timeoutSeconds: 10 });
  return { client, create, settle, start, log };
}

const textOf = (job: Job) => {
  const url = (job.request as { document: { url: string } }).document.url;
  return Buffer.from(url.split(',')[1] as string, 'base64').toString();
};

describe('createWorker', () => {
  it('runs every job exactly once, at most 3 at a time, and reports each handler result', async () => {
    const { client, create, settle, start } = await setup();
    const jobs = [];
    for (let i = 0; i < 8; i++) jobs.push(await create(`job ${i}`));

    const calls: string[] = [];
    let active = 0;
    let maxActive = 0;
    const handler: JobHandler = async (job) => {
      calls.push(job.id);
      active++;
      maxActive = Math.max(maxActive, active);
      // The first jobs wait for each other: the worker must run three at once to get past this.
      if (calls.length <= 3) await until(() => maxActive === 3);
      active--;
      return { status_code: 201, body: { echo: textOf(job) } };
    };
    start({ endpoints: { 'documents/parse': handler }, concurrency: 3 });

    const finished = await Promise.all(jobs.map((job) => settle(job.id)));
    expect(finished.map((job) => job.status)).toEqual(jobs.map(() => 'completed'));
    finished.forEach((job, i) => {
      expect(job.response).toEqual({ status_code: 201, body: { echo: `job ${i}` } });
    });
    expect([...calls].sort()).toEqual(jobs.map((job) => job.id).sort());
    expect(maxActive).toBe(3);
    for (const job of jobs) {
      const attempts = await client.jobs.attempts(job.id);
      expect(attempts.data.map((attempt) => attempt.outcome)).toEqual(['succeeded']);
    }
  });

  it('reports a plain return value as the body of a 200 response', async () => {
    const { create, settle, start } = await setup();
    const job = await create('plain');
    start({ endpoints: { '/v1/documents/parse': (j) => ({ words: textOf(j).split(' ') }) } });
    expect((await settle(job.id)).response).toEqual({ status_code: 200, body: { words: ['plain'] } });
    expect(toJobResponse('text')).toEqual({ response: { status_code: 200, body: 'text' } });
    expect(toJobResponse(undefined)).toEqual({ response: { status_code: 200, body: {} } });
    expect(toJobResponse({ body: 1, extra: 2 })).toEqual({
      response: { status_code: 200, body: { body: 1, extra: 2 } },
    });
  });

  it('retries a job whose handler throws until max_attempts, then fails it with the last error', async () => {
    const { client, create, settle, start } = await setup();
    const job = await create('flaky', { max_attempts: 3 });
    let calls = 0;
    start({
      endpoints: {
        '/v1/documents/parse': () => {
          calls++;
          throw Object.assign(new Error(`upstream timed out (call ${calls})`), { code: 'upstream_timeout' });
        },
      },
    });

    const final = await settle(job.id);
    expect(final.status).toBe('failed');
    expect(final.error).toEqual({ code: 'upstream_timeout', message: 'upstream timed out (call 3)' });
    expect(calls).toBe(3);
    const attempts = await client.jobs.attempts(job.id);
    expect(attempts.data.map((attempt) => attempt.outcome)).toEqual(['failed', 'failed', 'failed']);
  });

  it('fails a job at once on a NonRetryableError, or an error with retryable: false', async () => {
    const { client, create, settle, start } = await setup();
    const marked = await create('marked', { max_attempts: 3 });
    const flagged = await create('flagged', { max_attempts: 3 });
    start({
      endpoints: {
        '/v1/documents/parse': (job) => {
          if (textOf(job) === 'marked') {
            throw new NonRetryableError('Cannot parse this.', { code: 'bad_document', details: { page: 2 } });
          }
          throw Object.assign(new Error('No.'), { retryable: false });
        },
      },
    });

    expect(await settle(marked.id)).toMatchObject({
      status: 'failed',
      attempt_count: 1,
      error: { code: 'bad_document', message: 'Cannot parse this.', details: { page: 2 } },
    });
    expect(await settle(flagged.id)).toMatchObject({
      status: 'failed',
      attempt_count: 1,
      error: { code: 'handler_error', message: 'No.' },
    });
    expect((await client.jobs.attempts(marked.id)).data).toHaveLength(1);
  });

  it('aborts the handler signal when the client cancels a running job, and the job ends cancelled', async () => {
    const { client, create, settle, start } = await setup();
    const job = await create('long');
    const started = gate();
    let reason: unknown;
    start({
      endpoints: {
        '/v1/documents/parse': (_job, ctx) => {
          started.open();
          return new Promise((_resolve, reject) => {
            ctx.signal.addEventListener('abort', () => {
              reason = ctx.signal.reason;
              reject(ctx.signal.reason);
            });
          });
        },
      },
    });

    await started.promise;
    expect(await client.jobs.cancel(job.id)).toMatchObject({ status: 'in_progress', cancelled: true });
    const final = await settle(job.id);
    expect(final.status).toBe('cancelled');
    expect(reason).toBeInstanceOf(JobCancelledError);
    const attempts = await client.jobs.attempts(job.id);
    expect(attempts.data.map((attempt) => attempt.outcome)).toEqual(['cancelled']);
  });

  it('aborts the handler signal when the lease is lost, drops that result, and runs the job again', async () => {
    const { client, create, settle, start } = await setup();
    const job = await create('lost', { max_attempts: 3 });
    const started = gate();
    const reasons: unknown[] = [];
    start({
      // One slot: the job can only be claimed again once the stale handler has given it up.
      concurrency: 1,
      leaseSeconds: 30,
      endpoints: {
        '/v1/documents/parse': async (_job, ctx) => {
          if (reasons.length > 0) return { attempt: ctx.attempt };
          started.open();
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
          reasons.push(ctx.signal.reason);
          return { attempt: 'stale' };
        },
      },
    });

    await started.promise;
    // The lease runs out and the reaper takes the job back, as if this worker had stalled.
    offsetMs += 60_000;
    const reaped = await reapExpiredLeases({
      ...server.ctx.jobs,
      clock,
      config: { ...server.ctx.config, retryBaseSeconds: 1, retryMaxSeconds: 1 },
      random: () => 0,
    });
    expect(reaped.requeued).toBe(1);

    const final = await settle(job.id);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(LeaseLostError);
    expect(final.response).toEqual({ status_code: 200, body: { attempt: 2 } });
    const attempts = await client.jobs.attempts(job.id);
    expect(attempts.data.map((attempt) => attempt.outcome)).toEqual(['lease_expired', 'succeeded']);
  });

  it('on stop, stops claiming and lets a running handler finish and report its result', async () => {
    const { client, create, settle, start } = await setup();
    const job = await create('finish me');
    const started = gate();
    const finish = gate();
    let calls = 0;
    const { worker, stopped } = start({
      endpoints: {
        '/v1/documents/parse': async () => {
          calls++;
          started.open();
          await finish.promise;
          return { finished: true };
        },
      },
    });

    await started.promise;
    const stopping = worker.stop();
    const later = await create('not claimed');
    finish.open();
    await stopping;
    await stopped;

    expect(await settle(job.id)).toMatchObject({
      status: 'completed',
      response: { status_code: 200, body: { finished: true } },
    });
    expect(calls).toBe(1);
    // A claim cut short by stop hands back what it took in that moment: wait for queued.
    await until(async () => (await client.jobs.status(later.id)).job.status === 'queued');
    expect(worker.activeJobs).toBe(0);
  });

  it('on stop, releases a job whose handler is still running after the grace period', async () => {
    const { client, create, start } = await setup();
    const job = await create('too slow');
    const started = gate();
    let reason: unknown;
    const { worker } = start({
      shutdownGraceSeconds: 0.2,
      endpoints: {
        '/v1/documents/parse': async (_job, ctx) => {
          started.open();
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
          reason = ctx.signal.reason;
          return 'too late';
        },
      },
    });

    await started.promise;
    await worker.stop();
    const after = await client.jobs.retrieve(job.id, { includeResponse: true });
    expect(after).toMatchObject({ status: 'queued', response: null });
    expect(reason).toBeInstanceOf(WorkerShutdownError);
    const attempts = await client.jobs.attempts(job.id);
    expect(attempts.data.map((attempt) => attempt.outcome)).toEqual(['released']);
  });

  it('backs off and claims again after claim requests fail, instead of crashing', async () => {
    const { create, settle, start, log } = await setup();
    let failures = 2;
    const flaky: FetchLike = (url, init) => {
      if (url.endsWith('/v1/worker/claim') && failures-- > 0)
        return Promise.reject(new TypeError('fetch failed'));
      return fetch(url, init);
    };
    const job = await create('after failures');
    start({
      fetch: flaky,
      retryBackoff: { initialSeconds: 0.05, maxSeconds: 0.1 },
      endpoints: { '/v1/documents/parse': () => ({ ok: true }) },
    });

    expect((await settle(job.id)).status).toBe('completed');
    const warnings = log.entries.filter((entry) => entry.message === 'claim failed');
    expect(warnings).toHaveLength(2);
    expect(warnings[0]?.fields).toHaveProperty('retry_in_ms');
  });
});
