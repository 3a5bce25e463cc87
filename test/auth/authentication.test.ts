import { beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyCache } from '../../src/auth/api-key-cache.js';
import { revokeApiKey } from '../../src/auth/api-key-repository.js';
import { seedJob } from '../support/job-factory.js';
import { addKey, createTenant, createTestApp, useTestApp } from '../support/test-app.js';

// No key cache, so a revocation shows on the very next request.
const ctx = useTestApp({ env: { API_KEY_CACHE_TTL_SECONDS: '0' } });
let tenant: Awaited<ReturnType<typeof createTenant>>;
let jobId: string;

beforeAll(async () => {
  tenant = await createTenant(ctx.db);
  jobId = (await seedJob(ctx, tenant.organizationId)).id;
});

describe('credentials', () => {
  it('accepts the Api-Key header', async () => {
    const res = await ctx.app.inject({ url: `/v1/jobs/${jobId}`, headers: { 'api-key': tenant.key } });
    expect(res.statusCode).toBe(200);
  });

  it('accepts Authorization: Bearer', async () => {
    const res = await ctx.app.inject({
      url: `/v1/jobs/${jobId}/status`,
      headers: { authorization: `Bearer ${tenant.key}` },
    });
    expect(res.statusCode).toBe(200);
  });

  it('accepts the access_token query parameter', async () => {
    const res = await ctx.app.inject({ url: `/v1/jobs/${jobId}?access_token=${tenant.key}` });
    expect(res.statusCode).toBe(200);
    expect(res.json().id).toBe(jobId);
  });

  it('answers 401 without a key', async () => {
    const res = await ctx.app.inject({ url: `/v1/jobs/${jobId}` });
    expect(res.statusCode).toBe(401);
    expect(res.json().detail.code).toBe('unauthorized');
    expect(res.json().detail.message).toMatch(/^Missing API key/);
  });

  it.each([
    ['api-key', 'sk_not-a-real-key'],
    ['authorization', 'Bearer sk_not-a-real-key'],
    ['authorization', 'Basic dXNlcjpwYXNz'],
  ])('answers 401 for a bad %s header', async (header, value) => {
    const res = await ctx.app.inject({ url: `/v1/jobs/${jobId}`, headers: { [header]: value } });
    expect(res.statusCode).toBe(401);
    expect(res.json().detail.code).toBe('unauthorized');
  });

  it('answers 401 for a revoked key', async () => {
    const { key, keyId } = await addKey(ctx.db, tenant.organizationId, 'client');
    const url = `/v1/jobs/${jobId}/status`;
    expect((await ctx.app.inject({ url, headers: { 'api-key': key } })).statusCode).toBe(200);
    await revokeApiKey(ctx.db, keyId, new Date());
    const res = await ctx.app.inject({ url, headers: { 'api-key': key } });
    expect(res.statusCode).toBe(401);
    expect(res.json().detail.message).toMatch(/revoked/);
  });

  it('answers 403 to a worker key on a client route', async () => {
    const { key } = await addKey(ctx.db, tenant.organizationId, 'worker');
    const res = await ctx.app.inject({ url: `/v1/jobs/${jobId}`, headers: { 'api-key': key } });
    expect(res.statusCode).toBe(403);
    expect(res.json().detail.code).toBe('forbidden');
  });

  it('lets an admin key use client routes', async () => {
    const { key } = await addKey(ctx.db, tenant.organizationId, 'admin');
    const res = await ctx.app.inject({ url: `/v1/jobs/${jobId}`, headers: { 'api-key': key } });
    expect(res.statusCode).toBe(200);
  });

  it('checks the key before validating the input', async () => {
    const res = await ctx.app.inject({ url: '/v1/jobs/nonsense' });
    expect(res.statusCode).toBe(401);
  });
});

describe('organizations', () => {
  it("answers another organization's job exactly like a missing one", async () => {
    const other = await createTenant(ctx.db);
    const missingId = 'job_AAAAAAAAAAAAAAAAAAAAA';
    for (const path of ['', '/status']) {
      const foreign = await ctx.app.inject({
        url: `/v1/jobs/${jobId}${path}`,
        headers: { 'api-key': other.key },
      });
      const missing = await ctx.app.inject({
        url: `/v1/jobs/${missingId}${path}`,
        headers: { 'api-key': other.key },
      });
      expect(foreign.statusCode).toBe(404);
      expect(missing.statusCode).toBe(404);
      expect(JSON.stringify(foreign.json()).replaceAll(jobId, 'ID')).toBe(
        JSON.stringify(missing.json()).replaceAll(missingId, 'ID'),
      );
    }
  });
});

describe('key cache', () => {
  it('keeps a verified key for its lifetime, then forgets it', () => {
    let now = 1000;
    const cache = new ApiKeyCache(10_000, 100, () => now);
    const key = { id: 'key_1', organizationId: 'org_1', scope: 'client' as const };
    cache.set('h', key);
    now += 9_999;
    expect(cache.get('h')).toEqual(key);
    now += 1;
    expect(cache.get('h')).toBeUndefined();
  });

  it('drops the oldest entry when full', () => {
    const cache = new ApiKeyCache(10_000, 2);
    const key = { id: 'key_1', organizationId: 'org_1', scope: 'client' as const };
    cache.set('a', key);
    cache.set('b', key);
    cache.set('c', key);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toEqual(key);
    expect(cache.get('c')).toEqual(key);
  });

  it('serves a cached key without the database: a revoked key works until its entry expires', async () => {
    const cached = await createTestApp({ env: { API_KEY_CACHE_TTL_SECONDS: '3600' } });
    try {
      const owner = await createTenant(cached.db);
      const id = (await seedJob(cached, owner.organizationId)).id;
      const url = `/v1/jobs/${id}/status`;
      expect((await cached.app.inject({ url, headers: { 'api-key': owner.key } })).statusCode).toBe(200);
      await revokeApiKey(cached.db, owner.keyId, new Date());
      expect((await cached.app.inject({ url, headers: { 'api-key': owner.key } })).statusCode).toBe(200);
    } finally {
      await cached.close();
    }
  });
});
