import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type FetchLike,
  type JobStatusView,
  JobsClient,
  TimeoutError,
  WaitTimeoutError,
  WorkerApi,
} from '../../sdk/src/index.js';
import {
  createSdkTenant,
  parseRequest,
  type SdkServer,
  startSdkServer,
  stopSdkServer,
  until,
} from './sdk-helpers.js';

let server: SdkServer;

beforeAll(async () => {
  server = await startSdkServer();
});
afterAll(() => stopSdkServer(server));

/** A tenant of its own per test, so a claim takes that test's job and no other. */
async function setup(options: { fetch?: FetchLike } = {}) {
  const tenant = await createSdkTenant(server.ctx);
  const client = new JobsClient({ apiKey: tenant.clientKey, baseUrl: server.baseUrl, fetch: options.fetch });
  const worker = new WorkerApi({ apiKey: tenant.workerKey, baseUrl: server.baseUrl });
  const job = await client.jobs.create({
    endpoint: '/v1/documents/parse',
    request: parseRequest('wait for me'),
  });
  return { client, worker, job };
}

/** Counts the status polls a client sends; `rewrite` may change their URL first. */
function countingFetch(rewrite: (url: URL) => void = () => {}) {
  const polls: string[] = [];
  const fetchLike: FetchLike = (input, init) => {
    const url = new URL(input);
    if (url.pathname.endsWith('/status')) {
      rewrite(url);
      polls.push(url.search);
    }
    return fetch(url, init);
  };
  return { fetch: fetchLike, polls };
}

describe('jobs.waitForCompletion', () => {
  it('returns as soon as a worker completes the job, far sooner than the poll interval, with its response', async () => {
    const counting = countingFetch();
    const { client, worker, job } = await setup({ fetch: counting.fetch });
    const seen: JobStatusView[] = [];
    const started = Date.now();
    const waiting = client.jobs.waitForCompletion(job.id, {
      pollIntervalSeconds: 10,
      timeoutSeconds: 30,
      onStatus: (status) => seen.push(status),
    });

    await until(() => seen.length === 1);
    const [claimed] = (await worker.claim({ worker_id: 'wait-test' })).data;
    await worker.complete(job.id, {
      lease_token: claimed?.lease_token as string,
      response: { status_code: 200, body: { text: 'done' } },
    });
    const completedAt = Date.now();

    const final = await waiting;
    expect(final.status).toBe('completed');
    expect(final.response).toEqual({ status_code: 200, body: { text: 'done' } });
    expect(final.request).toBeNull();
    // A sleeping poller would answer no sooner than 10 s after its first poll.
    expect(Date.now() - completedAt).toBeLessThan(2000);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(counting.polls.slice(1).every((search) => /wait_seconds=\d+/.test(search))).toBe(true);
    expect(seen.at(0)?.status).toBe('queued');
    expect(seen.at(-1)?.status).toBe('completed');
  });

  it('includes the request and leaves out the response when asked to', async () => {
    const { client, job } = await setup();
    await client.jobs.cancel(job.id);
    const final = await client.jobs.waitForCompletion(job.id, {
      includeRequest: true,
      includeResponse: false,
    });
    expect(final.status).toBe('cancelled');
    expect(final.request).toEqual(parseRequest('wait for me'));
    expect(final.response).toBeNull();
  });

  it('returns a failed job with its error instead of throwing', async () => {
    const { client, worker, job } = await setup();
    const [claimed] = (await worker.claim({ worker_id: 'wait-test' })).data;
    const error = { code: 'unreadable', message: 'The document cannot be read.' };
    await worker.fail(job.id, { lease_token: claimed?.lease_token as string, error, retryable: false });
    const final = await client.jobs.waitForCompletion(job.id);
    expect(final).toMatchObject({ status: 'failed', error, response: null });
  });

  it('throws a WaitTimeoutError (a TimeoutError) with the last status when the job does not finish in time', async () => {
    const { client, job } = await setup();
    const started = Date.now();
    const error = await client.jobs.waitForCompletion(job.id, { timeoutSeconds: 1 }).catch((e) => e);
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(WaitTimeoutError);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.jobId).toBe(job.id);
    expect(error.lastStatus).toMatchObject({ id: job.id, status: 'queued' });
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(3000);
  });

  it('polls at the interval, not in a hot loop, when the server answers at once instead of waiting', async () => {
    // Stripping wait_seconds makes the server answer every poll at once, like one without long polls.
    const counting = countingFetch((url) => url.searchParams.delete('wait_seconds'));
    const { client, job } = await setup({ fetch: counting.fetch });
    const error = await client.jobs
      .waitForCompletion(job.id, { pollIntervalSeconds: 0.3, timeoutSeconds: 1.5 })
      .catch((e) => e);
    expect(error).toBeInstanceOf(WaitTimeoutError);
    // About one poll per 0.3 s over 1.5 s; a hot loop would send hundreds.
    expect(counting.polls.length).toBeGreaterThanOrEqual(3);
    expect(counting.polls.length).toBeLessThanOrEqual(8);
  });

  it('stops when its signal aborts', async () => {
    const { client, job } = await setup();
    const controller = new AbortController();
    const waiting = client.jobs.waitForCompletion(job.id, { signal: controller.signal });
    controller.abort(new Error('no longer needed'));
    await expect(waiting).rejects.toThrow('no longer needed');
  });
});
