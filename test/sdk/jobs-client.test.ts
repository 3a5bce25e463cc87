import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  BadRequestError,
  ConflictError,
  ConnectionError,
  type FetchLike,
  JobsApiError,
  JobsClient,
  NotFoundError,
  PermissionDeniedError,
  ServiceUnavailableError,
  TimeoutError,
  UnprocessableEntityError,
  WorkerApi,
} from '../../sdk/src/index.js';
import { dataUrl } from '../support/job-factory.js';
import {
  createSdkTenant,
  parseRequest,
  type SdkServer,
  startSdkServer,
  stopSdkServer,
} from './sdk-helpers.js';

let server: SdkServer;
let tenant: Awaited<ReturnType<typeof createSdkTenant>>;
let client: JobsClient;

beforeAll(async () => {
  server = await startSdkServer();
  tenant = await createSdkTenant(server.ctx);
  client = new JobsClient({ apiKey: tenant.clientKey, baseUrl: server.baseUrl });
});
afterAll(() => stopSdkServer(server));

const MISSING_ID = 'job_AAAAAAAAAAAAAAAAAAAAA';

/** A fetch that answers `status` for the first `times` requests matching `match`, then the real server. */
function failingFetch(match: (url: string, init: RequestInit) => boolean, times: number, status = 503) {
  const seen: string[] = [];
  const fetchLike: FetchLike = async (url, init) => {
    seen.push(`${init.method} ${new URL(url).pathname}`);
    if (match(url, init) && times-- > 0) {
      const body = { detail: { code: 'service_unavailable', message: 'Try again shortly.' } };
      return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
    }
    return fetch(url, init);
  };
  return { fetch: fetchLike, seen };
}

describe('jobs.create', () => {
  it('creates a queued job and answers it lightweight', async () => {
    const job = await client.jobs.create({
      endpoint: 'documents/parse',
      request: parseRequest('hello'),
      metadata: { source: 'create-test' },
      max_attempts: 2,
    });
    expect(job).toMatchObject({
      object: 'job',
      status: 'queued',
      endpoint: '/v1/documents/parse',
      organization_id: tenant.organizationId,
      metadata: { source: 'create-test' },
      request: null,
      response: null,
      cancelled: false,
      attempt_count: 0,
    });
    expect(job.id).toMatch(/^job_[A-Za-z0-9_-]{21}$/);
  });

  it('answers the same job for a repeated Idempotency-Key, and ConflictError for that key with another body', async () => {
    const key = `idem-${Date.now()}`;
    const params = { endpoint: '/v1/documents/parse', request: parseRequest('once') };
    const first = await client.jobs.create(params, { idempotencyKey: key });
    const again = await client.jobs.create(params, { idempotencyKey: key });
    expect(again.id).toBe(first.id);

    const error = await client.jobs
      .create({ ...params, request: parseRequest('another body') }, { idempotencyKey: key })
      .catch((e) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.status).toBe(409);
  });
});

describe('jobs.retrieve and jobs.retrieveFull', () => {
  it('retrieve is lightweight; retrieveFull restores an offloaded data URL byte for byte', async () => {
    // Well above OFFLOAD_THRESHOLD_BYTES: stored in object storage, not in the row.
    const pdf = dataUrl(60_000, 'application/pdf', 3);
    const request = { document: { filename: 'big.pdf', url: pdf.url }, model: 'small' };
    const created = await client.jobs.create({ endpoint: '/v1/documents/extract', request });
    expect(created.request_gcs_paths).not.toBeNull();

    const light = await client.jobs.retrieve(created.id);
    expect(light.id).toBe(created.id);
    expect(light.request).toBeNull();
    expect(light.response).toBeNull();

    const full = await client.jobs.retrieveFull(created.id);
    expect(full.request).toEqual(request);
    expect(full.warnings).toBeNull();
  });
});

describe('jobs.status', () => {
  it('answers lifecycle fields with an etag; with that etag, notModified until the job changes', async () => {
    const created = await client.jobs.create({ endpoint: '/v1/documents/parse', request: parseRequest('s') });
    const first = await client.jobs.status(created.id);
    expect(first.notModified).toBe(false);
    expect(first.job).toMatchObject({ id: created.id, status: 'queued', cancelled: false });
    expect(first.job).not.toHaveProperty('request');
    expect(first.etag).toMatch(/^"/);

    const same = await client.jobs.status(created.id, { etag: first.etag as string });
    expect(same).toEqual({ notModified: true, job: null, etag: first.etag });

    await client.jobs.cancel(created.id);
    const changed = await client.jobs.status(created.id, { etag: first.etag as string });
    expect(changed.notModified).toBe(false);
    expect(changed.job?.status).toBe('cancelled');
    expect(changed.etag).not.toBe(first.etag);
  });

  it('with waitSeconds, holds the answer until the job changes', async () => {
    const created = await client.jobs.create({ endpoint: '/v1/documents/parse', request: parseRequest('w') });
    const { etag } = await client.jobs.status(created.id);
    const started = Date.now();
    const waiting = client.jobs.status(created.id, { etag: etag as string, waitSeconds: 20 });
    await client.jobs.cancel(created.id);
    const answer = await waiting;
    expect(answer.job?.status).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('jobs.list, jobs.iterate and jobs.listAll', () => {
  it('list answers one page; iterate and listAll follow the after cursors across every page', async () => {
    const batch = `batch-${Date.now()}`;
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const job = await client.jobs.create({
        endpoint: '/v1/documents/parse',
        request: parseRequest(`job ${i}`),
        metadata: { batch },
      });
      ids.push(job.id);
    }
    const newestFirst = [...ids].reverse();

    const page = await client.jobs.list({ metadata: { batch }, limit: 3 });
    expect(page).toMatchObject({
      object: 'list',
      has_more: true,
      first_id: newestFirst[0],
      last_id: newestFirst[2],
    });
    expect(page.data.map((job) => job.id)).toEqual(newestFirst.slice(0, 3));
    expect(page.list_metadata.after).toBe(newestFirst[2]);

    const next = await client.jobs.list({
      metadata: { batch },
      limit: 3,
      after: page.list_metadata.after as string,
    });
    expect(next.data.map((job) => job.id)).toEqual(newestFirst.slice(3, 6));

    const walked: string[] = [];
    for await (const job of client.jobs.iterate({ metadata: { batch }, limit: 3 })) walked.push(job.id);
    expect(walked).toEqual(newestFirst);

    const ascending = await client.jobs.listAll({ metadata: { batch }, limit: 2, order: 'asc' });
    expect(ascending.map((job) => job.id)).toEqual(ids);

    const none = await client.jobs.listAll({ metadata: { batch }, status: 'failed' });
    expect(none).toEqual([]);
  });
});

describe('jobs.cancel, jobs.retry and jobs.attempts', () => {
  it('cancels a queued job, refuses to cancel it twice, and retries it back to queued', async () => {
    const created = await client.jobs.create({ endpoint: '/v1/documents/parse', request: parseRequest('c') });
    const cancelled = await client.jobs.cancel(created.id);
    expect(cancelled).toMatchObject({ id: created.id, status: 'cancelled', cancelled: true });

    await expect(client.jobs.cancel(created.id)).rejects.toBeInstanceOf(ConflictError);

    const retried = await client.jobs.retry(created.id);
    expect(retried).toMatchObject({ id: created.id, status: 'queued' });
    await expect(client.jobs.retry(created.id)).rejects.toBeInstanceOf(ConflictError);
  });

  it('attempts lists each execution with its worker, outcome and error', async () => {
    // Its own organization: the claim below takes this test's job and no other.
    const own = await createSdkTenant(server.ctx);
    const ownClient = new JobsClient({ apiKey: own.clientKey, baseUrl: server.baseUrl });
    const worker = new WorkerApi({ apiKey: own.workerKey, baseUrl: server.baseUrl });
    const created = await ownClient.jobs.create({
      endpoint: '/v1/documents/parse',
      request: parseRequest('a'),
    });
    expect(await ownClient.jobs.attempts(created.id)).toEqual({ object: 'list', data: [] });

    const [claimed] = (await worker.claim({ worker_id: 'attempts-test' })).data;
    expect(claimed?.job.id).toBe(created.id);
    const error = { code: 'bad_input', message: 'Cannot read this.' };
    await worker.fail(created.id, { lease_token: claimed?.lease_token as string, error, retryable: false });

    const attempts = await ownClient.jobs.attempts(created.id);
    expect(attempts.data).toHaveLength(1);
    expect(attempts.data[0]).toMatchObject({
      object: 'job.attempt',
      attempt: 1,
      worker_id: 'attempts-test',
      outcome: 'failed',
      error,
    });
    expect(await ownClient.jobs.retry(created.id)).toMatchObject({
      status: 'queued',
      last_failure_code: 'bad_input',
    });
  });
});

describe('typed errors', () => {
  it('a wrong key is an AuthenticationError (401) with the request id', async () => {
    const stranger = new JobsClient({ apiKey: 'sk_not_a_key', baseUrl: server.baseUrl });
    const error = await stranger.jobs.list().catch((e) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toBeInstanceOf(JobsApiError);
    expect(error.status).toBe(401);
    expect(typeof error.code).toBe('string');
    expect(error.requestId).toBeTruthy();
  });

  it('a worker key on a client route is a PermissionDeniedError (403)', async () => {
    const wrongScope = new JobsClient({ apiKey: tenant.workerKey, baseUrl: server.baseUrl });
    await expect(wrongScope.jobs.list()).rejects.toBeInstanceOf(PermissionDeniedError);
  });

  it('an unknown job is a NotFoundError (404) with the server code and message', async () => {
    const error = await client.jobs.retrieve(MISSING_ID).catch((e) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'not_found' });
    expect(error.message).toContain(MISSING_ID);
  });

  it('a request invalid for its endpoint is an UnprocessableEntityError (422) with details', async () => {
    const error = await client.jobs.create({ endpoint: '/v1/documents/nope', request: {} }).catch((e) => e);
    expect(error).toBeInstanceOf(UnprocessableEntityError);
    expect(error.status).toBe(422);
    expect(error.details).toMatchObject({ field: 'endpoint' });

    const missing = await client.jobs
      .create({ endpoint: '/v1/documents/parse', request: {} })
      .catch((e) => e);
    expect(missing).toBeInstanceOf(UnprocessableEntityError);
    expect(missing.details).toEqual({ field: 'request.document' });
  });

  it('an invalid query is a BadRequestError (400)', async () => {
    const error = await client.jobs.list({ from_date: '2024-02-31' }).catch((e) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.details).toMatchObject({ field: 'from_date' });
  });

  it('an unreachable server is a ConnectionError', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const offline = new JobsClient({ apiKey: 'k', baseUrl: `http://127.0.0.1:${port}`, maxRetries: 0 });
    const error = await offline.jobs.retrieve(MISSING_ID).catch((e) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('a request slower than timeoutMs is a TimeoutError', async () => {
    const never: FetchLike = (_url, init) =>
      new Promise((_resolve, reject) =>
        init.signal?.addEventListener('abort', () => reject(init.signal?.reason)),
      );
    const slow = new JobsClient({
      apiKey: 'k',
      baseUrl: server.baseUrl,
      timeoutMs: 50,
      maxRetries: 0,
      fetch: never,
    });
    await expect(slow.jobs.retrieve(MISSING_ID)).rejects.toBeInstanceOf(TimeoutError);
  });

  it("the caller's AbortSignal cancels a request with its own reason", async () => {
    const controller = new AbortController();
    const created = await client.jobs.create({ endpoint: '/v1/documents/parse', request: parseRequest('x') });
    const waiting = client.jobs.status(created.id, { waitSeconds: 30, signal: controller.signal });
    controller.abort(new Error('enough'));
    await expect(waiting).rejects.toThrow('enough');
  });
});

describe('retries', () => {
  it('retries a GET after a 503', async () => {
    const flaky = failingFetch((_url, init) => init.method === 'GET', 1);
    const retrying = new JobsClient({
      apiKey: tenant.clientKey,
      baseUrl: server.baseUrl,
      fetch: flaky.fetch,
    });
    const created = await client.jobs.create({ endpoint: '/v1/documents/parse', request: parseRequest('r') });
    expect((await retrying.jobs.retrieve(created.id)).id).toBe(created.id);
    expect(flaky.seen).toEqual([`GET /v1/jobs/${created.id}`, `GET /v1/jobs/${created.id}`]);
  });

  it('does not retry a create without an Idempotency-Key, and retries one with a key', async () => {
    const isCreate = (url: string, init: RequestInit) =>
      init.method === 'POST' && new URL(url).pathname === '/v1/jobs';
    const once = failingFetch(isCreate, 1);
    const plain = new JobsClient({ apiKey: tenant.clientKey, baseUrl: server.baseUrl, fetch: once.fetch });
    const params = { endpoint: '/v1/documents/parse', request: parseRequest('k') };
    await expect(plain.jobs.create(params)).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(once.seen).toHaveLength(1);

    const again = failingFetch(isCreate, 1);
    const keyed = new JobsClient({ apiKey: tenant.clientKey, baseUrl: server.baseUrl, fetch: again.fetch });
    const job = await keyed.jobs.create(params, { idempotencyKey: `retry-${Date.now()}` });
    expect(job.status).toBe('queued');
    expect(again.seen).toHaveLength(2);
  });
});
