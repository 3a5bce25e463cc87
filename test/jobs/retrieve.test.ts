import { beforeAll, describe, expect, it } from 'vitest';
import { dataUrl, seedJob } from '../support/job-factory.js';
import { createTenant, createTestApp, useTestApp } from '../support/test-app.js';

// The contract's own copy of the seed's fields (not derived from src/domain/job-shape.ts, which
// is what this checks): the lifecycle fields the status route answers; the job object adds its
// payload fields. A new field of the job is a contract change and lands here on purpose.
const STATUS_FIELDS = [
  'id',
  'object',
  'status',
  'endpoint',
  'error',
  'warnings',
  'created_at',
  'started_at',
  'completed_at',
  'expires_at',
  'organization_id',
  'metadata',
  'cancelled',
  'attempt_count',
  'last_attempt_at',
  'last_failure_code',
].sort();

const JOB_FIELDS = [...STATUS_FIELDS, 'request', 'response', 'cloud_task_name', 'request_gcs_paths'].sort();

const ctx = useTestApp({ env: { OFFLOAD_THRESHOLD_BYTES: '1024' } });
let tenant: Awaited<ReturnType<typeof createTenant>>;
const pdf = dataUrl(100_000, 'application/pdf');

beforeAll(async () => {
  tenant = await createTenant(ctx.db);
});

const get = (url: string, key = tenant.key) =>
  ctx.app.inject({ method: 'GET', url, headers: { 'api-key': key } });

describe('GET /v1/jobs/{job_id}', () => {
  it('answers every field of the seed with its type, lightweight by default', async () => {
    const job = await seedJob(ctx, tenant.organizationId, {
      request: { document: { filename: 'invoice.pdf', url: pdf.url }, model: 'retab-small' },
      metadata: { batch_id: 'batch_001' },
    });
    const res = await get(`/v1/jobs/${job.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(JOB_FIELDS);
    expect(body).toMatchObject({
      id: job.id,
      object: 'job',
      status: 'queued',
      endpoint: '/v1/documents/extract',
      request: null,
      response: null,
      error: null,
      warnings: null,
      started_at: null,
      completed_at: null,
      organization_id: tenant.organizationId,
      metadata: { batch_id: 'batch_001' },
      cloud_task_name: null,
      cancelled: false,
      attempt_count: 0,
      last_attempt_at: null,
      last_failure_code: null,
      request_gcs_paths: { '/document/url': expect.stringMatching(/^file:\/\//) },
    });
    expect(body.id).toMatch(/^job_[A-Za-z0-9_-]{21}$/);
    expect(Number.isInteger(body.created_at)).toBe(true);
    expect(body.expires_at - body.created_at).toBe(604800);
    expect(Math.abs(body.created_at - Date.now() / 1000)).toBeLessThan(60);
  });

  it('restores the request byte-for-byte with include_request=true', async () => {
    const request = {
      document: { filename: 'invoice.pdf', url: pdf.url },
      json_schema: { type: 'object' },
      model: 'retab-small',
    };
    const job = await seedJob(ctx, tenant.organizationId, { request });
    const body = (await get(`/v1/jobs/${job.id}?include_request=true`)).json();
    expect(body.request).toEqual(request);
    expect(body.response).toBeNull();
    expect(body.warnings).toBeNull();
  });

  it('restores a completed response with include_response=true, and only then', async () => {
    const image = dataUrl(5000, 'image/png', 7);
    const response = { status_code: 200, body: { pages: [{ text: 'hi', image: image.url }] } };
    const job = await seedJob(ctx, tenant.organizationId, { status: 'completed', response });

    const light = (await get(`/v1/jobs/${job.id}`)).json();
    expect(light).toMatchObject({ status: 'completed', request: null, response: null });
    expect(Number.isInteger(light.completed_at)).toBe(true);
    expect(Number.isInteger(light.started_at)).toBe(true);

    const withResponse = (await get(`/v1/jobs/${job.id}?include_response=true`)).json();
    expect(withResponse.response).toEqual(response);
    expect(withResponse.request).toBeNull();

    const both = (await get(`/v1/jobs/${job.id}?include_request=1&include_response=1`)).json();
    expect(both.response).toEqual(response);
    expect(both.request).toEqual({ document: { filename: 'a.txt', url: 'data:text/plain;base64,aGVsbG8=' } });

    const neither = (await get(`/v1/jobs/${job.id}?include_request=0&include_response=false`)).json();
    expect(neither).toMatchObject({ request: null, response: null });
  });

  it('answers response null for a job that is not completed, even with include_response', async () => {
    const job = await seedJob(ctx, tenant.organizationId, {
      status: 'failed',
      error: { code: 'model_error', message: 'boom', details: { attempt: 1 } },
    });
    const body = (await get(`/v1/jobs/${job.id}?include_response=true`)).json();
    expect(body).toMatchObject({
      status: 'failed',
      response: null,
      error: { code: 'model_error', message: 'boom', details: { attempt: 1 } },
      last_failure_code: 'model_error',
    });
  });

  it('restores a request that was offloaded whole, with its data URLs inside', async () => {
    const local = await createTestApp({
      env: { OFFLOAD_THRESHOLD_BYTES: '1024', INLINE_DOCUMENT_LIMIT_BYTES: '2048' },
    });
    try {
      const owner = await createTenant(local.db);
      const request = {
        documents: [
          { filename: 'a.pdf', url: dataUrl(3000, 'application/pdf', 3).url },
          { filename: 'b.png', url: dataUrl(3000, 'image/png', 4).url },
        ],
        notes: 'x'.repeat(5000),
      };
      const job = await seedJob(local, owner.organizationId, { request });
      const res = await local.app.inject({
        url: `/v1/jobs/${job.id}?include_request=true`,
        headers: { 'api-key': owner.key },
      });
      const body = res.json();
      expect(Object.keys(body.request_gcs_paths).sort()).toEqual([
        '',
        '/documents/0/url',
        '/documents/1/url',
      ]);
      expect(body.request).toEqual(request);
      expect(body.warnings).toBeNull();
    } finally {
      await local.close();
    }
  });

  it('keeps warnings stored on the job and appends restore warnings after them', async () => {
    const job = await seedJob(ctx, tenant.organizationId, {
      request: { document: { filename: 'x.pdf', url: dataUrl(2000).url } },
      warnings: [{ code: 'low_quality_scan', message: 'page 2 is blurry' }],
    });
    const [artifact] = await ctx.db
      .selectFrom('job_artifacts')
      .selectAll()
      .where('job_id', '=', job.id)
      .execute();
    await ctx.store.delete(artifact.storage_uri);
    const body = (await get(`/v1/jobs/${job.id}?include_request=true`)).json();
    expect(body.warnings.map((w: { code: string }) => w.code)).toEqual([
      'low_quality_scan',
      'artifact_restore_failed',
    ]);
    // Lightweight retrieves do not touch storage, so they carry only the stored warning.
    expect((await get(`/v1/jobs/${job.id}`)).json().warnings).toHaveLength(1);
  });
});

describe('GET /v1/jobs/{job_id}/status', () => {
  it('answers the lifecycle fields only', async () => {
    const job = await seedJob(ctx, tenant.organizationId, { metadata: { k: 'v' } });
    const res = await get(`/v1/jobs/${job.id}/status`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(STATUS_FIELDS);
    expect(body).toMatchObject({
      id: job.id,
      object: 'job',
      status: 'queued',
      metadata: { k: 'v' },
      cancelled: false,
    });
  });
});

describe('malformed input', () => {
  it.each([
    ['/v1/jobs/not-a-job-id', 'job_id'],
    ['/v1/jobs/job_short', 'job_id'],
    ['/v1/jobs/job_V1StGXR8_Z5jdHi6B-myT%20', 'job_id'],
    ['/v1/jobs/not-a-job-id/status', 'job_id'],
  ])('rejects the id in %s with 400', async (url, field) => {
    const res = await get(url);
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toMatchObject({
      code: 'invalid_request',
      details: { location: 'params', field },
    });
    expect(res.json().detail.message).toBe(
      `Invalid path parameter '${field}': expected a job id: 'job_' followed by 21 characters of A-Z, a-z, 0-9, '_' and '-'.`,
    );
  });

  it.each(['yes', 'TRUE', '2', ''])(
    'rejects include_request=%s with 400 naming the parameter',
    async (value) => {
      const job = await seedJob(ctx, tenant.organizationId);
      const res = await get(`/v1/jobs/${job.id}?include_request=${value}`);
      expect(res.statusCode).toBe(400);
      expect(res.json().detail.message).toBe(
        "Invalid query parameter 'include_request': must be one of: true, false, 1, 0.",
      );
    },
  );

  it('answers 404 for an unknown job', async () => {
    const res = await get('/v1/jobs/job_V1StGXR8_Z5jdHi6B-myT');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      detail: {
        code: 'not_found',
        message: "No job found with id 'job_V1StGXR8_Z5jdHi6B-myT'.",
        details: { job_id: 'job_V1StGXR8_Z5jdHi6B-myT' },
      },
    });
  });
});

describe('keys with line breaks', () => {
  it('are answered like any other key: metadata, request_gcs_paths pointers, error details', async () => {
    const created = await ctx.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { 'api-key': tenant.key },
      payload: {
        endpoint: '/v1/schemas/generate',
        request: { 'a\nb': pdf.url },
        metadata: { 'line\nbreak': 'v', 'para\u2028sep': 'w', plain: 'x' },
      },
    });
    expect(created.statusCode).toBe(201);
    expect(created.json().metadata).toEqual({ 'line\nbreak': 'v', 'para\u2028sep': 'w', plain: 'x' });
    expect(Object.keys(created.json().request_gcs_paths)).toEqual(['/a\nb']);
    const job = await seedJob(ctx, tenant.organizationId, {
      status: 'failed',
      error: { code: 'x', message: 'm', details: { 'carriage\rreturn': 1 } },
    });
    expect((await get(`/v1/jobs/${job.id}/status`)).json().error.details).toEqual({ 'carriage\rreturn': 1 });
  });
});
