import { Writable } from 'node:stream';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { seedJob } from '../support/job-factory.js';
import { createTenant, createTestApp, useTestApp } from '../support/test-app.js';

const ctx = useTestApp();
let tenant: Awaited<ReturnType<typeof createTenant>>;

beforeAll(async () => {
  tenant = await createTenant(ctx.db);
});

describe('request ids', () => {
  it('keeps the x-request-id a gateway sent', async () => {
    const res = await ctx.app.inject({ url: '/healthz', headers: { 'x-request-id': 'gw-1234.abc' } });
    expect(res.headers['x-request-id']).toBe('gw-1234.abc');
  });

  it('makes one when none was sent, or when the one sent is not an id', async () => {
    const none = await ctx.app.inject({ url: '/healthz' });
    expect(none.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const junk = await ctx.app.inject({ url: '/healthz', headers: { 'x-request-id': 'a b\tc' } });
    expect(junk.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('is on error answers too', async () => {
    const unauthorized = await ctx.app.inject({ url: '/v1/jobs/x', headers: { 'x-request-id': 'r-1' } });
    expect(unauthorized.statusCode).toBe(401);
    expect(unauthorized.headers['x-request-id']).toBe('r-1');
    const unknown = await ctx.app.inject({ url: '/nope', headers: { 'x-request-id': 'r-2' } });
    expect(unknown.headers['x-request-id']).toBe('r-2');
  });
});

describe('unknown routes', () => {
  it.each([
    ['GET', '/nope'],
    ['GET', '/v1/jobs/job_V1StGXR8_Z5jdHi6B-myT/unknown'],
    ['DELETE', '/v1/jobs/job_V1StGXR8_Z5jdHi6B-myT'],
  ])('answers %s %s with 404 in the error shape', async (method, url) => {
    const res = await ctx.app.inject({ method: method as 'GET', url: `${url}?access_token=secret` });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ detail: { code: 'not_found', message: `No route for ${method} ${url}.` } });
  });
});

describe('health', () => {
  it('answers liveness and readiness without a key', async () => {
    expect((await ctx.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await ctx.app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ok' });
  });

  it('is not ready when the database does not answer', async () => {
    const app = await buildApp({
      config: loadConfig({ LOG_LEVEL: 'silent', DATABASE_URL: 'postgres://x:y@127.0.0.1:1/none' }),
      store: ctx.store,
      logger: pino({ level: 'silent' }),
      listener: false,
      backgroundTasks: false,
    });
    try {
      const res = await app.inject({ url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json().detail.code).toBe('service_unavailable');
      expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('answers 503 on an API route when the database is down', async () => {
    const app = await buildApp({
      config: loadConfig({
        LOG_LEVEL: 'silent',
        API_KEY_CACHE_TTL_SECONDS: '0',
        DATABASE_URL: 'postgres://x:y@127.0.0.1:1/none',
      }),
      store: ctx.store,
      logger: pino({ level: 'silent' }),
      listener: false,
      backgroundTasks: false,
    });
    try {
      const res = await app.inject({
        url: '/v1/jobs/job_V1StGXR8_Z5jdHi6B-myT',
        headers: { 'api-key': 'sk_x' },
      });
      expect(res.statusCode).toBe(503);
      expect(res.json().detail.code).toBe('service_unavailable');
    } finally {
      await app.close();
    }
  });
});

describe('OpenAPI', () => {
  it('serves the document generated from the route schemas', async () => {
    const res = await ctx.app.inject({ url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/jobs/{job_id}', '/v1/jobs/{job_id}/status']),
    );
    const retrieve = doc.paths['/v1/jobs/{job_id}'].get;
    expect(retrieve.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['job_id', 'include_request', 'include_response', 'access_token']),
    );
    expect(Object.keys(retrieve.responses['200'].content['application/json'].schema.properties)).toContain(
      'request_gcs_paths',
    );
  });
});

describe('behind a gateway', () => {
  it('serves every route under BASE_PATH', async () => {
    const prefixed = await createTestApp({ env: { BASE_PATH: '/jobs-api' } });
    try {
      const owner = await createTenant(prefixed.db);
      const job = await seedJob(prefixed, owner.organizationId);
      const ok = await prefixed.app.inject({
        url: `/jobs-api/v1/jobs/${job.id}`,
        headers: { 'api-key': owner.key },
      });
      expect(ok.statusCode).toBe(200);
      expect((await prefixed.app.inject({ url: '/jobs-api/healthz' })).statusCode).toBe(200);
      expect(
        (await prefixed.app.inject({ url: `/v1/jobs/${job.id}`, headers: { 'api-key': owner.key } }))
          .statusCode,
      ).toBe(404);
      const doc = (await prefixed.app.inject({ url: '/jobs-api/openapi.json' })).json();
      expect(Object.keys(doc.paths)).toContain('/jobs-api/v1/jobs/{job_id}');
    } finally {
      await prefixed.close();
    }
  });

  it('honours X-Forwarded-For only when told to trust the proxy', async () => {
    const seen: string[] = [];
    for (const trust of ['false', 'true']) {
      const config = loadConfig({ LOG_LEVEL: 'silent', TRUST_PROXY: trust });
      const app = await buildApp({
        config,
        db: ctx.db,
        store: ctx.store,
        logger: pino({ level: 'silent' }),
        listener: false,
      });
      app.addHook('onRequest', async (request) => {
        seen.push(`${request.ip} ${request.protocol}`);
      });
      await app.inject({
        url: '/healthz',
        remoteAddress: '10.0.0.1',
        headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https' },
      });
      await app.close();
    }
    expect(seen).toEqual(['10.0.0.1 http', '203.0.113.7 https']);
  });
});

describe('logs', () => {
  it('never write the credentials a caller sent', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ level: 'info', destination: sink });
    const config = loadConfig({ LOG_LEVEL: 'info' });
    const app = await buildApp({ config, db: ctx.db, store: ctx.store, logger, listener: false });
    try {
      const job = await seedJob(ctx, tenant.organizationId);
      await app.inject({ url: `/v1/jobs/${job.id}?access_token=${tenant.key}&include_request=true` });
      await app.inject({ url: `/v1/jobs/${job.id}`, headers: { authorization: `Bearer ${tenant.key}` } });
      await app.inject({ url: `/v1/jobs/${job.id}`, headers: { 'api-key': tenant.key } });
      const secret = tenant.key.slice(3);
      const all = lines.join('');
      expect(all).toContain('access_token=[REDACTED]');
      expect(all).toContain('"request_id"');
      expect(all).not.toContain(secret);
    } finally {
      await app.close();
    }
  });
});
