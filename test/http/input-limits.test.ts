import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { beforeEach, describe, expect, it } from 'vitest';
import { dataUrl, seedJob } from '../support/job-factory.js';
import { useTestApp } from '../support/test-app.js';
import {
  claimOk,
  createWorkerTenant,
  jobRow,
  WORKER_TEST_ENV,
  type WorkerClient,
  workerClient,
} from '../workers/worker-helpers.js';

const ctx = useTestApp({ env: { ...WORKER_TEST_ENV, OFFLOAD_THRESHOLD_BYTES: '1024' } });
let tenant: Awaited<ReturnType<typeof createWorkerTenant>>;
let worker: WorkerClient;

// A tenant per test: its queue holds only the test's own jobs.
beforeEach(async () => {
  tenant = await createWorkerTenant(ctx);
  worker = workerClient(ctx, tenant.workerKey);
});

/** A JSON text nested `depth` levels deep: {"a":{"a":…}}. Built as text: JSON.stringify would recurse. */
const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

const createRaw = (payload: string) =>
  ctx.app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: { 'api-key': tenant.clientKey, 'content-type': 'application/json' },
    payload,
  });

const jobCount = async () =>
  Number(
    (
      await ctx.db
        .selectFrom('jobs')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('organization_id', '=', tenant.organizationId)
        .executeTakeFirstOrThrow()
    ).n,
  );

const storedFiles = async () =>
  (await readdir(fileURLToPath(ctx.store.baseUri), { recursive: true }).catch(() => [] as string[])).sort();

describe('text the database cannot store', () => {
  it.each([
    [
      'a NUL in a metadata value',
      '{"endpoint":"/v1/schemas/generate","request":{},"metadata":{"k":"a\\u0000b"}}',
      'metadata.k',
    ],
    [
      'a NUL in a metadata key',
      '{"endpoint":"/v1/schemas/generate","request":{},"metadata":{"a\\u0000":"v"}}',
      'metadata',
    ],
    [
      'a lone surrogate in metadata',
      '{"endpoint":"/v1/schemas/generate","request":{},"metadata":{"k":"\\ud800"}}',
      'metadata.k',
    ],
    [
      'a NUL deep in the request',
      '{"endpoint":"/v1/schemas/generate","request":{"x":[{"y":"\\u0000"}]}}',
      'request.x.0.y',
    ],
  ])('refuses %s with 400 naming the field, and stores nothing', async (_what, payload, field) => {
    const before = await jobCount();
    const res = await createRaw(payload);
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toMatchObject({
      code: 'invalid_request',
      details: { location: 'body', field },
    });
    expect(res.json().detail.message).toContain(`'${field}'`);
    expect(res.headers['x-request-id']).toBeDefined();
    expect(await jobCount()).toBe(before);
  });

  it('refuses a metadata filter holding a NUL with 400', async () => {
    const res = await ctx.app.inject({
      url: `/v1/jobs?metadata=${encodeURIComponent('{"k":"a\u0000"}')}`,
      headers: { 'api-key': tenant.clientKey },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toMatchObject({ code: 'invalid_request', details: { field: 'metadata' } });
  });

  it('refuses a worker_id, warnings or an error holding a NUL, and the lease stays as it was', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const claim = await worker.claim({ worker_id: 'w\u0000' });
    expect(claim.statusCode).toBe(400);
    expect(claim.json().detail.details.field).toBe('worker_id');
    const [claimed] = await claimOk(worker);
    expect(claimed.job.id).toBe(job.id);
    const before = await jobRow(ctx, job.id);
    const { lease_token } = claimed;
    const refused = [
      await worker.complete(job.id, {
        lease_token,
        response: { status_code: 200, body: {} },
        warnings: [{ code: 'w', message: 'bad \u0000 text' }],
      }),
      await worker.fail(job.id, { lease_token, error: { code: 'x\u0000', message: 'm' }, retryable: false }),
      await worker.fail(job.id, { lease_token, error: { code: 'x', message: '\u0000' }, retryable: false }),
      await worker.fail(job.id, {
        lease_token,
        error: { code: 'x', message: 'm', details: { d: '\u0000' } },
        retryable: false,
      }),
    ];
    expect(refused.map((r) => [r.statusCode, r.json().detail.details.field])).toEqual([
      [400, 'warnings.0.message'],
      [400, 'error.code'],
      [400, 'error.message'],
      [400, 'error.details.d'],
    ]);
    expect(await jobRow(ctx, job.id)).toEqual(before);
    // The worker can still report its real failure.
    const failed = await worker.fail(job.id, {
      lease_token,
      error: { code: 'x', message: 'the text without the NUL' },
      retryable: false,
    });
    expect(failed.json().status).toBe('failed');
  });
});

describe('nesting', () => {
  it('refuses a create whose request nests deeper than BODY_MAX_DEPTH (128) with 400', async () => {
    const res = await createRaw(`{"endpoint":"/v1/schemas/generate","request":${nested(2000)}}`);
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toMatchObject({ code: 'invalid_request', details: { field: 'request' } });
    expect(res.json().detail.message).toContain('deeper than 128 levels');
  });

  it('accepts a request nested up to the limit', async () => {
    // The body is level 1, the request level 2: 126 more levels inside it make 128.
    const res = await createRaw(`{"endpoint":"/v1/schemas/generate","request":${nested(127)}}`);
    expect(res.statusCode).toBe(201);
    const deeper = await createRaw(`{"endpoint":"/v1/schemas/generate","request":${nested(128)}}`);
    expect(deeper.statusCode).toBe(400);
  });

  it('refuses a response body or error details nested thousands of levels deep, without a 500', async () => {
    await seedJob(ctx, tenant.organizationId);
    const [claimed] = await claimOk(worker);
    const post = (route: string, payload: string) =>
      ctx.app.inject({
        method: 'POST',
        url: `/v1/worker/jobs/${claimed.job.id}/${route}`,
        headers: { 'api-key': tenant.workerKey, 'content-type': 'application/json' },
        payload,
      });
    const complete = await post(
      'complete',
      `{"lease_token":"${claimed.lease_token}","response":{"status_code":200,"body":${nested(3000)}}}`,
    );
    expect([complete.statusCode, complete.json().detail.details.field]).toEqual([400, 'response']);
    const fail = await post(
      'fail',
      `{"lease_token":"${claimed.lease_token}","retryable":false,"error":{"code":"x","message":"m","details":${nested(5000)}}}`,
    );
    expect([fail.statusCode, fail.json().detail.details.field]).toEqual([400, 'error']);
    expect((await jobRow(ctx, claimed.job.id)).status).toBe('in_progress');
  });
});

describe('data URLs', () => {
  beforeEach(async () => {
    expect((await storedFiles()).filter((f) => f.includes('broken'))).toEqual([]);
  });

  it('refuses broken base64 with 422 naming its JSON pointer, and writes nothing', async () => {
    const before = { jobs: await jobCount(), files: await storedFiles() };
    const big = dataUrl(5000).url;
    const res = await createRaw(
      JSON.stringify({
        endpoint: '/v1/documents/extract',
        request: {
          documents: [
            { filename: 'ok.pdf', url: big },
            { filename: 'broken.pdf', url: 'data:application/pdf;base64,@@@@' },
          ],
        },
      }),
    );
    expect(res.statusCode).toBe(422);
    expect(res.json().detail).toMatchObject({
      code: 'unprocessable_entity',
      message: "Invalid request: the data URL at '/documents/1/url' is not valid base64.",
      details: { pointer: '/documents/1/url' },
    });
    expect({ jobs: await jobCount(), files: await storedFiles() }).toEqual(before);
  });

  it('refuses broken base64 in a completed response with 422, and the lease stays as it was', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const [claimed] = await claimOk(worker);
    expect(claimed.job.id).toBe(job.id);
    const res = await worker.complete(job.id, {
      lease_token: claimed.lease_token,
      response: { status_code: 200, body: { image: 'data:image/png;base64,QUJD!' } },
    });
    expect(res.statusCode).toBe(422);
    expect(res.json().detail.details).toEqual({ pointer: '/body/image' });
    expect((await jobRow(ctx, job.id)).lease_token).toBe(claimed.lease_token);
  });
});

describe('response.body', () => {
  it.each([
    ['an array', [1, 2]],
    ['a string', 'done'],
    ['null', null],
  ])('must be a JSON object: %s answers 400', async (_what, body) => {
    await seedJob(ctx, tenant.organizationId);
    const [claimed] = await claimOk(worker);
    const res = await worker.complete(claimed.job.id, {
      lease_token: claimed.lease_token,
      response: { status_code: 200, body },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toMatchObject({ code: 'invalid_request', details: { field: 'response.body' } });
    expect((await jobRow(ctx, claimed.job.id)).status).toBe('in_progress');
  });
});

describe('numbers in query strings', () => {
  it.each(['0x10', '1e1', ' 5', '5.0', '+5'])(
    'accepts decimal digits only: wait_seconds=%s answers 400',
    async (raw) => {
      const job = await seedJob(ctx, tenant.organizationId);
      const res = await ctx.app.inject({
        url: `/v1/jobs/${job.id}/status?wait_seconds=${encodeURIComponent(raw)}`,
        headers: { 'api-key': tenant.clientKey },
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().detail.message).toBe(
        "Invalid query parameter 'wait_seconds': must be a decimal integer.",
      );
    },
  );

  it('still reads decimal numbers', async () => {
    const res = await ctx.app.inject({ url: '/v1/jobs?limit=07', headers: { 'api-key': tenant.clientKey } });
    expect(res.statusCode).toBe(200);
  });
});
