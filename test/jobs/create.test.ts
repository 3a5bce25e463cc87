import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GcsObjectStore } from '../../src/storage/gcs-store.js';
import { type FakeGcsServer, startFakeGcsServer } from '../support/fake-gcs-server.js';
import { dataUrl } from '../support/job-factory.js';
import { createTenant, createTestApp, type TestContext, useTestApp } from '../support/test-app.js';

const ctx = useTestApp({ env: { OFFLOAD_THRESHOLD_BYTES: '1024', BODY_LIMIT_BYTES: '20000000' } });
let tenant: Awaited<ReturnType<typeof createTenant>>;

beforeAll(async () => {
  tenant = await createTenant(ctx.db);
});

const post = (
  payload: unknown,
  headers: Record<string, string> = {},
  c: TestContext = ctx,
  key = tenant.key,
) =>
  c.app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: { 'api-key': key, 'content-type': 'application/json', ...headers },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });

const retrieve = (id: string, query = '', c: TestContext = ctx, key = tenant.key) =>
  c.app.inject({ url: `/v1/jobs/${id}${query}`, headers: { 'api-key': key } });

async function filesUnder(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

const countJobs = async (c: TestContext = ctx) =>
  Number(
    (
      await c.db
        .selectFrom('jobs')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

const doc = { filename: 'invoice.pdf', url: 'data:application/pdf;base64,JVBERi0xLjQK' };

describe('POST /v1/jobs', () => {
  it('creates a queued job and answers it lightweight with 201', async () => {
    const res = await post({
      endpoint: '/v1/documents/extract',
      request: { document: doc },
      metadata: { batch: 'b1' },
    });
    expect(res.statusCode).toBe(201);
    const job = res.json();
    expect(job).toMatchObject({
      object: 'job',
      status: 'queued',
      endpoint: '/v1/documents/extract',
      request: null,
      response: null,
      error: null,
      organization_id: tenant.organizationId,
      metadata: { batch: 'b1' },
      cancelled: false,
      attempt_count: 0,
      request_gcs_paths: null,
    });
    expect(job.id).toMatch(/^job_[A-Za-z0-9_-]{21}$/);
    expect((await retrieve(job.id, '?include_request=true')).json().request).toEqual({ document: doc });
  });

  it('accepts the endpoint without its /v1 prefix and stores it with it', async () => {
    const res = await post({ endpoint: '/documents/parse', request: { document: doc } });
    expect(res.statusCode).toBe(201);
    expect(res.json().endpoint).toBe('/v1/documents/parse');
  });

  it('gives back a 5 MB PDF byte-for-byte, stored in object storage', async () => {
    const pdf = dataUrl(5 * 1024 * 1024, 'application/pdf', 42);
    const request = { document: { filename: 'big.pdf', url: pdf.url }, model: 'retab-small' };
    const res = await post({ endpoint: 'documents/extract', request });
    expect(res.statusCode).toBe(201);
    const job = res.json();
    expect(Object.keys(job.request_gcs_paths)).toEqual(['/document/url']);
    const stored = await ctx.db
      .selectFrom('jobs')
      .select('request')
      .where('id', '=', job.id)
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(stored.request).length).toBeLessThan(1000);
    const restored = (await retrieve(job.id, '?include_request=true')).json();
    expect(restored.warnings).toBeNull();
    // Same text, key order included, not just an equal value.
    expect(JSON.stringify(restored.request)).toBe(JSON.stringify(request));
    const [, b64] = restored.request.document.url.split(',');
    expect(Buffer.from(b64, 'base64').equals(pdf.bytes)).toBe(true);
  });

  it('offloads data URLs of several MIME types nested in arrays and objects', async () => {
    const request = {
      documents: [
        { filename: 'a.pdf', url: dataUrl(3000, 'application/pdf', 1).url },
        { filename: 'b.png', url: dataUrl(3000, 'image/png', 2).url },
      ],
      extra: {
        nested: [{ deep: { image: dataUrl(4000, 'image/jpeg;name=photo.jpg', 3).url } }],
        small: 'data:text/plain;base64,aGk=',
        text: dataUrl(5000, 'text/csv', 4).url,
      },
    };
    const res = await post({ endpoint: '/v1/documents/split', request });
    expect(res.statusCode).toBe(201);
    expect(Object.keys(res.json().request_gcs_paths).sort()).toEqual([
      '/documents/0/url',
      '/documents/1/url',
      '/extra/nested/0/deep/image',
      '/extra/text',
    ]);
    const artifacts = await ctx.db
      .selectFrom('job_artifacts')
      .select(['pointer', 'content_type', 'byte_size', 'sha256'])
      .where('job_id', '=', res.json().id)
      .orderBy('pointer')
      .execute();
    expect(artifacts.map((a) => [a.pointer, a.content_type, Number(a.byte_size)])).toEqual([
      ['/documents/0/url', 'application/pdf', 3000],
      ['/documents/1/url', 'image/png', 3000],
      ['/extra/nested/0/deep/image', 'image/jpeg;name=photo.jpg', 4000],
      ['/extra/text', 'text/csv', 5000],
    ]);
    const restored = (await retrieve(res.json().id, '?include_request=true')).json().request;
    expect(JSON.stringify(restored)).toBe(JSON.stringify(request));
  });

  it('keeps a data URL whose base64 is not canonical inline, so it comes back exactly as sent', async () => {
    const url = `data:application/pdf;base64,${'QUJD'.repeat(500)}=`;
    const res = await post({
      endpoint: '/v1/documents/extract',
      request: { document: { filename: 'x.pdf', url } },
    });
    expect(res.json().request_gcs_paths).toBeNull();
    expect((await retrieve(res.json().id, '?include_request=true')).json().request.document.url).toBe(url);
  });

  it('stores a request that is still too large whole, and restores it', async () => {
    const local = await createTestApp({
      env: { OFFLOAD_THRESHOLD_BYTES: '1024', INLINE_DOCUMENT_LIMIT_BYTES: '4096' },
    });
    try {
      const owner = await createTenant(local.db);
      const request = { document: doc, json_schema: { description: 'x'.repeat(10_000) } };
      const res = await post({ endpoint: '/v1/documents/extract', request }, {}, local, owner.key);
      expect(res.statusCode).toBe(201);
      expect(Object.keys(res.json().request_gcs_paths)).toEqual(['']);
      expect(
        (await retrieve(res.json().id, '?include_request=true', local, owner.key)).json().request,
      ).toEqual(request);
    } finally {
      await local.close();
    }
  });

  it('stores max_attempts within the configured limit', async () => {
    const res = await post({ endpoint: '/v1/schemas/generate', request: {}, max_attempts: 5 });
    expect(res.statusCode).toBe(201);
    const row = await ctx.db
      .selectFrom('jobs')
      .select('max_attempts')
      .where('id', '=', res.json().id)
      .executeTakeFirstOrThrow();
    expect(row.max_attempts).toBe(5);
    const defaulted = await post({ endpoint: '/v1/schemas/generate', request: {} });
    const row2 = await ctx.db
      .selectFrom('jobs')
      .select('max_attempts')
      .where('id', '=', defaulted.json().id)
      .executeTakeFirstOrThrow();
    expect(row2.max_attempts).toBe(3);
  });
});

describe('POST /v1/jobs with bad input changes nothing', () => {
  it.each([
    ['no endpoint', { request: { document: doc } }, 400, 'endpoint'],
    ['request not an object', { endpoint: '/v1/documents/extract', request: 'hello' }, 400, 'request'],
    ['request an array', { endpoint: '/v1/documents/extract', request: [doc] }, 400, 'request'],
    [
      'an unknown field',
      { endpoint: '/v1/documents/extract', request: { document: doc }, priority: 1 },
      400,
      'priority',
    ],
    [
      '17 metadata pairs',
      {
        endpoint: '/v1/schemas/generate',
        request: {},
        metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])),
      },
      400,
      'metadata',
    ],
    [
      'a metadata key of 65 chars',
      { endpoint: '/v1/schemas/generate', request: {}, metadata: { ['k'.repeat(65)]: 'v' } },
      400,
      'metadata',
    ],
    [
      'a metadata value of 513 chars',
      { endpoint: '/v1/schemas/generate', request: {}, metadata: { k: 'v'.repeat(513) } },
      400,
      'metadata.k',
    ],
    [
      'a metadata value that is not a string',
      { endpoint: '/v1/schemas/generate', request: {}, metadata: { k: 1 } },
      400,
      'metadata.k',
    ],
    [
      'max_attempts 0',
      { endpoint: '/v1/schemas/generate', request: {}, max_attempts: 0 },
      400,
      'max_attempts',
    ],
    [
      'max_attempts above the limit',
      { endpoint: '/v1/schemas/generate', request: {}, max_attempts: 11 },
      422,
      'max_attempts',
    ],
    [
      'an unknown endpoint',
      { endpoint: '/v1/documents/translate', request: { document: doc } },
      422,
      'endpoint',
    ],
    [
      'a document endpoint without a document',
      { endpoint: '/v1/documents/extract', request: { model: 'm' } },
      422,
      'request.document',
    ],
    [
      'a document without a filename',
      { endpoint: '/v1/documents/extract', request: { document: { url: doc.url } } },
      422,
      'request.document.filename',
    ],
    [
      'a document url that is not a URL',
      { endpoint: '/v1/documents/extract', request: { document: { filename: 'a', url: 'hello' } } },
      422,
      'request.document.url',
    ],
    [
      'an empty documents list',
      { endpoint: '/v1/documents/classify', request: { documents: [] } },
      422,
      'request.documents',
    ],
    [
      'a bad second document',
      { endpoint: '/v1/documents/classify', request: { documents: [doc, { filename: 'b' }] } },
      422,
      'request.documents.1.url',
    ],
  ])('answers %s with its status, naming the field', async (_name, payload, status, field) => {
    const before = await countJobs();
    const res = await post(payload);
    expect(res.statusCode).toBe(status);
    const detail = res.json().detail;
    expect(detail.code).toBe(status === 400 ? 'invalid_request' : 'unprocessable_entity');
    expect(detail.details.field).toBe(field);
    expect(detail.message).toContain(`'${field}'`);
    expect(await countJobs()).toBe(before);
  });

  it('answers an empty JSON body with 400', async () => {
    const res = await post('');
    expect(res.statusCode).toBe(400);
    expect(res.json().detail.message).toBe('The request body must be a JSON object.');
  });

  it('answers malformed JSON with 400', async () => {
    const res = await post('{"endpoint": ');
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toMatchObject({ code: 'invalid_request' });
    expect(res.json().detail.message).toMatch(/^The body is not valid JSON/);
  });

  it('answers a body that is not JSON with 415', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { 'api-key': tenant.key, 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().detail.code).toBe('unsupported_media_type');
  });

  it('answers a body above the limit with 413, storing nothing', async () => {
    const local = await createTestApp({
      env: { BODY_LIMIT_BYTES: '100000', OFFLOAD_THRESHOLD_BYTES: '1024' },
    });
    try {
      const owner = await createTenant(local.db);
      const big = {
        endpoint: '/v1/documents/extract',
        request: { document: { filename: 'a.pdf', url: dataUrl(200_000).url } },
      };
      const res = await post(big, {}, local, owner.key);
      expect(res.statusCode).toBe(413);
      expect(res.json().detail).toEqual({
        code: 'payload_too_large',
        message: 'The request body is larger than the limit of 100000 bytes.',
      });
      expect(await countJobs(local)).toBe(0);
      expect(await filesUnder(fileURLToPath(local.store.baseUri))).toEqual([]);
    } finally {
      await local.close();
    }
  });
});

describe('Idempotency-Key', () => {
  const body = { endpoint: '/v1/documents/extract', request: { document: doc } };

  it('returns the original job for the same key and body, with 200', async () => {
    const first = await post(body, { 'idempotency-key': 'order-1' });
    const second = await post({ ...body, endpoint: 'documents/extract' }, { 'idempotency-key': 'order-1' });
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(200);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.json().id).toBe(first.json().id);
  });

  it('answers 409 for the same key with another body', async () => {
    await post(body, { 'idempotency-key': 'order-2' });
    const res = await post({ ...body, metadata: { changed: 'yes' } }, { 'idempotency-key': 'order-2' });
    expect(res.statusCode).toBe(409);
    expect(res.json().detail.code).toBe('idempotency_conflict');
  });

  it('scopes keys to the organization', async () => {
    const other = await createTenant(ctx.db);
    const mine = await post(body, { 'idempotency-key': 'shared' });
    const theirs = await post(body, { 'idempotency-key': 'shared' }, ctx, other.key);
    expect(theirs.statusCode).toBe(201);
    expect(theirs.json().id).not.toBe(mine.json().id);
  });

  it('makes one job of concurrent creates with one key, leaving no stray object', async () => {
    const local = await createTestApp({ env: { OFFLOAD_THRESHOLD_BYTES: '1024' } });
    try {
      const owner = await createTenant(local.db);
      const payload = {
        endpoint: '/v1/documents/extract',
        request: { document: { filename: 'a.pdf', url: dataUrl(50_000).url } },
      };
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => post(payload, { 'idempotency-key': 'race' }, local, owner.key)),
      );
      const ids = new Set(answers.map((a) => a.json().id));
      expect(ids.size).toBe(1);
      expect(answers.filter((a) => a.statusCode === 201)).toHaveLength(1);
      expect(answers.filter((a) => a.statusCode === 200)).toHaveLength(11);
      expect(await countJobs(local)).toBe(1);
      expect(await filesUnder(fileURLToPath(local.store.baseUri))).toHaveLength(1);
    } finally {
      await local.close();
    }
  });

  it('rejects a key that is not printable ASCII', async () => {
    const res = await post(body, { 'idempotency-key': 'a b' });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail.details.field).toBe('idempotency-key');
  });
});

describe('creation on GCS', () => {
  let gcs: FakeGcsServer;
  let gctx: TestContext;
  let owner: Awaited<ReturnType<typeof createTenant>>;

  beforeAll(async () => {
    gcs = await startFakeGcsServer({ buckets: ['jobs'] });
    const store = new GcsObjectStore({
      bucket: 'jobs',
      prefix: 'artifacts',
      apiEndpoint: gcs.url,
      projectId: 'test',
      maxRetries: 0,
    });
    gctx = await createTestApp({ store, env: { OFFLOAD_THRESHOLD_BYTES: '1024' } });
    owner = await createTenant(gctx.db);
  });
  afterAll(async () => {
    await gctx.close();
    await gcs.stop();
  });

  it('round-trips data URLs through the real GCS client', async () => {
    const request = {
      documents: [
        { filename: 'a.pdf', url: dataUrl(300_000, 'application/pdf', 9).url },
        { filename: 'b.png', url: dataUrl(2000, 'image/png', 8).url },
      ],
    };
    const res = await post({ endpoint: '/v1/documents/classify', request }, {}, gctx, owner.key);
    expect(res.statusCode).toBe(201);
    const paths = res.json().request_gcs_paths;
    expect(paths['/documents/0/url']).toMatch(/^gs:\/\/jobs\/artifacts\/org_.+\/job_.+\/request\//);
    expect(gcs.objects.names('jobs')).toHaveLength(2);
    expect((await retrieve(res.json().id, '?include_request=true', gctx, owner.key)).json().request).toEqual(
      request,
    );
  });

  it('answers 503 when storage fails mid-create, leaving no row and no object', async () => {
    gcs.reset();
    const before = await countJobs(gctx);
    // The first upload succeeds, the second fails: the first must be deleted again.
    const fault = gcs.faults.add({ type: 'status', status: 503, op: 'put', skip: 1 });
    const request = {
      documents: [
        { filename: 'a.pdf', url: dataUrl(3000, 'application/pdf', 1).url },
        { filename: 'b.pdf', url: dataUrl(3000, 'application/pdf', 2).url },
      ],
    };
    const res = await post({ endpoint: '/v1/documents/classify', request }, {}, gctx, owner.key);
    fault.remove();
    expect(fault.hits).toBe(1);
    expect(res.statusCode).toBe(503);
    expect(res.json().detail.code).toBe('service_unavailable');
    expect(await countJobs(gctx)).toBe(before);
    expect(gcs.objects.names('jobs')).toEqual([]);
  });
});
