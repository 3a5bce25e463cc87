import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createWorker,
  type FetchLike,
  type Job,
  JobCancelledError,
  JobsClient,
  LeaseLostError,
  type Worker,
  type WorkerOptions,
  type WorkerReport,
  type WorkerReportResult,
} from '../../sdk/src/index.js';
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

let server: SdkServer;
const running: Worker[] = [];

// A small body limit, so that one large result is enough to make a whole batch too large.
const BODY_LIMIT = 64 * 1024;

beforeAll(async () => {
  server = await startSdkServer({ env: { BODY_LIMIT_BYTES: String(BODY_LIMIT) } });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((worker) => worker.stop({ graceSeconds: 0 })));
});
afterAll(() => stopSdkServer(server));

type Rewrite = (answer: WorkerReportResult[], reports: WorkerReport[]) => WorkerReportResult[];

/**
 * The SDK's fetch, recording every request the worker sends; `rewrite` may change the answers of
 * the batch route on their way back (the server has applied the reports all the same).
 */
function recordingFetch(rewrite?: Rewrite) {
  const requests: { path: string; body: unknown }[] = [];
  const fetchLike: FetchLike = async (url, init) => {
    const path = new URL(url).pathname;
    requests.push({ path, body: init.body ? JSON.parse(String(init.body)) : undefined });
    const response = await fetch(url, init);
    if (!rewrite || path !== '/v1/worker/reports' || response.status !== 200) return response;
    const answer = (await response.json()) as { object: 'list'; data: WorkerReportResult[] };
    const { reports } = JSON.parse(String(init.body)) as { reports: WorkerReport[] };
    const data = rewrite(answer.data, reports);
    return new Response(JSON.stringify({ ...answer, data }), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    });
  };
  /** The reports of each batch request, in the order they were sent. */
  const batches = () =>
    requests
      .filter((r) => r.path === '/v1/worker/reports')
      .map((r) => (r.body as { reports: WorkerReport[] }).reports);
  const singles = () => requests.filter((r) => r.path.startsWith('/v1/worker/jobs/'));
  return { fetch: fetchLike, requests, batches, singles };
}

/** Another worker took the job over: its lease token is not this worker's any more. */
const takeOver = (id: string) =>
  sql`update jobs set lease_token = gen_random_uuid() where id = ${id}`.execute(server.ctx.db);

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
      logger: log.logger,
      ...options,
    });
    running.push(worker);
    const stopped = worker.start();
    return { worker, stopped };
  };
  const create = async (count: number) => {
    const jobs: Job[] = [];
    for (let i = 0; i < count; i++) {
      jobs.push(
        await client.jobs.create({ endpoint: '/v1/documents/parse', request: parseRequest(`job ${i}`) }),
      );
    }
    return jobs;
  };
  const status = async (id: string) => (await client.jobs.status(id)).job?.status;
  const outcomes = async (id: string) => (await client.jobs.attempts(id)).data.map((a) => a.outcome);
  return { client, create, status, outcomes, start, log };
}

describe('createWorker reports in batches', () => {
  it('reports many finished jobs in a few requests of the batch route, each job answered on its own', async () => {
    const { create, status, outcomes, start } = await setup();
    const jobs = await create(40);
    const http = recordingFetch();
    start({
      concurrency: 40,
      fetch: http.fetch,
      endpoints: { '/v1/documents/parse': (job) => ({ id: job.id }) },
    });

    await until(async () =>
      (await Promise.all(jobs.map((job) => status(job.id)))).every((s) => s === 'completed'),
    );
    for (const job of jobs) expect(await outcomes(job.id)).toEqual(['succeeded']);
    const batches = http.batches();
    expect(http.singles()).toEqual([]);
    expect(batches.length).toBeLessThanOrEqual(4);
    const completed = batches.flat().filter((r) => r.type === 'complete');
    expect(completed.map((r) => r.job_id).sort()).toEqual(jobs.map((job) => job.id).sort());
  });

  it('sends the reports still waiting for their batch when stop() is called, before it resolves', async () => {
    const { create, status, start } = await setup();
    const [fast, slow] = await create(2);
    const http = recordingFetch();
    const fastDone = gate();
    const slowStarted = gate();
    const finishSlow = gate();
    const { worker, stopped } = start({
      concurrency: 2,
      // Far longer than the test: without the stop, the fast job's result would wait.
      reportFlushMs: 60_000,
      fetch: http.fetch,
      endpoints: {
        '/v1/documents/parse': async (job) => {
          if (job.id === fast.id) {
            fastDone.open();
            return { fast: true };
          }
          slowStarted.open();
          await finishSlow.promise;
          return { slow: true };
        },
      },
    });
    await Promise.all([fastDone.promise, slowStarted.promise]);
    // The fast result waits for the slow job, which could join its batch.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(http.batches()).toEqual([]);
    expect(await status(fast.id)).toBe('in_progress');

    const begun = performance.now();
    const stopping = worker.stop();
    await until(async () => (await status(fast.id)) === 'completed');
    finishSlow.open();
    await stopping;
    await stopped;
    expect(performance.now() - begun).toBeLessThan(5000);
    expect(await status(slow.id)).toBe('completed');
    expect(http.batches().map((batch) => batch.map((r) => [r.type, r.job_id]))).toEqual([
      [['complete', fast.id]],
      [['complete', slow.id]],
    ]);
  });

  it('on a stop without grace, sends the waiting result and releases the running job in the same stop', async () => {
    const { create, status, outcomes, start } = await setup();
    const [fast, slow] = await create(2);
    const http = recordingFetch();
    const fastDone = gate();
    const slowStarted = gate();
    const { worker } = start({
      concurrency: 2,
      reportFlushMs: 60_000,
      fetch: http.fetch,
      endpoints: {
        '/v1/documents/parse': async (job, ctx) => {
          if (job.id === fast.id) {
            fastDone.open();
            return { fast: true };
          }
          slowStarted.open();
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
          return { slow: 'too late' };
        },
      },
    });
    await Promise.all([fastDone.promise, slowStarted.promise]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(http.batches()).toEqual([]);

    await worker.stop({ graceSeconds: 0 });
    expect(await status(fast.id)).toBe('completed');
    expect(await status(slow.id)).toBe('queued');
    expect(await outcomes(slow.id)).toEqual(['released']);
    expect(worker.activeJobs).toBe(0);
  });

  it('aborts only the handler whose heartbeat, in a batch of heartbeats, answers cancel_requested', async () => {
    const { client, create, status, outcomes, start } = await setup();
    const jobs = await create(3);
    const target = jobs[1] as Job;
    const http = recordingFetch();
    const started = new Set<string>();
    const finish = gate();
    const reasons = new Map<string, unknown>();
    start({
      concurrency: 3,
      heartbeatIntervalSeconds: 0.1,
      fetch: http.fetch,
      endpoints: {
        '/v1/documents/parse': (job, ctx) => {
          started.add(job.id);
          return new Promise((resolve, reject) => {
            ctx.signal.addEventListener('abort', () => {
              reasons.set(job.id, ctx.signal.reason);
              reject(ctx.signal.reason);
            });
            void finish.promise.then(() => resolve({ done: job.id }));
          });
        },
      },
    });
    await until(() => started.size === 3);
    await until(() =>
      http.batches().some((batch) => batch.filter((r) => r.type === 'heartbeat').length === 3),
    );

    await client.jobs.cancel(target.id);
    await until(async () => (await status(target.id)) === 'cancelled');
    expect(await outcomes(target.id)).toEqual(['cancelled']);
    expect([...reasons.keys()]).toEqual([target.id]);
    expect(reasons.get(target.id)).toBeInstanceOf(JobCancelledError);

    finish.open();
    for (const job of [jobs[0], jobs[2]] as Job[]) {
      await until(async () => (await status(job.id)) === 'completed');
      expect(await outcomes(job.id)).toEqual(['succeeded']);
    }
    expect(http.singles()).toEqual([]);
  });

  it('a heartbeat refused 409 inside a batch of heartbeats aborts only its own handler', async () => {
    const { create, status, outcomes, start } = await setup();
    const jobs = await create(3);
    const lost = jobs[1] as Job;
    const http = recordingFetch();
    const started = new Set<string>();
    const finish = gate();
    const reasons = new Map<string, unknown>();
    start({
      concurrency: 3,
      heartbeatIntervalSeconds: 0.1,
      fetch: http.fetch,
      endpoints: {
        '/v1/documents/parse': (job, ctx) => {
          started.add(job.id);
          return new Promise((resolve) => {
            ctx.signal.addEventListener('abort', () => {
              reasons.set(job.id, ctx.signal.reason);
              resolve({ stale: job.id });
            });
            void finish.promise.then(() => resolve({ done: job.id }));
          });
        },
      },
    });
    await until(() => started.size === 3);
    await takeOver(lost.id);
    await until(() => reasons.has(lost.id));
    expect(reasons.get(lost.id)).toBeInstanceOf(LeaseLostError);
    // Its last heartbeat, the refused one, went out with the others', which kept their leases.
    const lastBeat = http
      .batches()
      .filter((batch) => batch.some((r) => r.job_id === lost.id && r.type === 'heartbeat'))
      .at(-1);
    expect(lastBeat?.map((r) => r.type)).toEqual(['heartbeat', 'heartbeat', 'heartbeat']);
    expect([...reasons.keys()]).toEqual([lost.id]);

    finish.open();
    for (const job of [jobs[0], jobs[2]] as Job[]) {
      await until(async () => (await status(job.id)) === 'completed');
      expect(await outcomes(job.id)).toEqual(['succeeded']);
    }
    // Its outcome was dropped: the job stays with the "other worker".
    expect(await status(lost.id)).toBe('in_progress');
    expect(
      http
        .batches()
        .flat()
        .filter((r) => r.job_id === lost.id && r.type !== 'heartbeat'),
    ).toEqual([]);
  });

  it('a result refused 409 inside a batch of results fails only its own report', async () => {
    const { create, status, outcomes, start, log } = await setup();
    const jobs = await create(3);
    const lost = jobs[1] as Job;
    const http = recordingFetch();
    const started = new Set<string>();
    const finish = gate();
    start({
      concurrency: 3,
      fetch: http.fetch,
      endpoints: {
        '/v1/documents/parse': async (job) => {
          started.add(job.id);
          await finish.promise;
          return { done: job.id };
        },
      },
    });
    await until(() => started.size === 3);
    await takeOver(lost.id);
    finish.open();

    for (const job of [jobs[0], jobs[2]] as Job[]) {
      await until(async () => (await status(job.id)) === 'completed');
      expect(await outcomes(job.id)).toEqual(['succeeded']);
    }
    await until(() => log.entries.some((e) => e.message.startsWith('could not report the outcome')));
    const refused = log.entries.filter((e) => e.message.startsWith('could not report the outcome'));
    expect(refused.map((e) => [e.level, e.fields.job_id, (e.fields.err as Error).name])).toEqual([
      ['warn', lost.id, 'ConflictError'],
    ]);
    // The three results went out together; the refused one changed nothing.
    expect(http.batches().map((batch) => batch.map((r) => r.type))).toEqual([
      ['complete', 'complete', 'complete'],
    ]);
    expect(await status(lost.id)).toBe('in_progress');
  });

  it('splits a batch the server refuses as too large, so that only the oversized result fails its job', async () => {
    const { create, status, client, start } = await setup();
    const jobs = await create(4);
    const big = jobs[2] as Job;
    const http = recordingFetch();
    const go = gate();
    start({
      concurrency: 4,
      fetch: http.fetch,
      endpoints: {
        '/v1/documents/parse': async (job) => {
          await go.promise;
          return job.id === big.id ? { text: 'x'.repeat(BODY_LIMIT) } : { ok: job.id };
        },
      },
    });
    await until(async () =>
      (await Promise.all(jobs.map((j) => status(j.id)))).every((s) => s === 'in_progress'),
    );
    go.open();

    await until(async () => (await status(big.id)) === 'failed');
    const failed = await client.jobs.retrieve(big.id);
    expect(failed.error).toMatchObject({ code: 'invalid_handler_result', details: { status: 413 } });
    for (const job of jobs.filter((j) => j.id !== big.id)) {
      await until(async () => (await status(job.id)) === 'completed');
    }
    // The first request carried all four results; the halves and quarters followed.
    const batches = http.batches().map((batch) => batch.map((r) => r.job_id));
    expect(batches[0]?.sort()).toEqual(jobs.map((j) => j.id).sort());
    expect(batches).toContainEqual([big.id]);
  });

  it('sends a report answered 503 on its own again in a later batch; the others are not sent twice', async () => {
    const { create, status, outcomes, start } = await setup();
    const jobs = await create(3);
    const unlucky = jobs[0] as Job;
    let refusals = 0;
    // As when object storage could not take that one response: the server answers it 503.
    const http = recordingFetch((answer, reports) =>
      answer.map((item, i) => {
        if (reports[i]?.job_id !== unlucky.id || reports[i]?.type !== 'complete' || refusals > 0) return item;
        refusals++;
        const error = {
          code: 'service_unavailable',
          message: 'Object storage could not store the response.',
        };
        return { ...item, status_code: 503, job: null, error };
      }),
    );
    const go = gate();
    start({
      concurrency: 3,
      fetch: http.fetch,
      endpoints: {
        '/v1/documents/parse': async (job) => {
          await go.promise;
          return { ok: job.id };
        },
      },
    });
    await until(async () =>
      (await Promise.all(jobs.map((j) => status(j.id)))).every((s) => s === 'in_progress'),
    );
    go.open();

    for (const job of jobs) await until(async () => (await status(job.id)) === 'completed');
    await until(
      () =>
        http
          .batches()
          .flat()
          .filter((r) => r.job_id === unlucky.id).length === 2,
    );
    expect(refusals).toBe(1);
    expect(await outcomes(unlucky.id)).toEqual(['succeeded']);
    const sent = http
      .batches()
      .flat()
      .map((r) => r.job_id);
    for (const job of jobs)
      expect(sent.filter((id) => id === job.id)).toHaveLength(job.id === unlucky.id ? 2 : 1);
  });
});
