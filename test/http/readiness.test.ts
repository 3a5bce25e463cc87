import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { GcsObjectStore } from '../../src/storage/gcs-store.js';
import { type FakeGcsServer, startFakeGcsServer } from '../support/fake-gcs-server.js';
import { dataUrl, seedJob } from '../support/job-factory.js';
import { createTenant, useTestApp } from '../support/test-app.js';

const ctx = useTestApp({ env: { OFFLOAD_THRESHOLD_BYTES: '1024' } });
let gcs: FakeGcsServer;
beforeAll(async () => {
  gcs = await startFakeGcsServer({ buckets: ['jobs'] });
});
afterAll(() => gcs?.stop());

const gcsStore = (bucket: string) =>
  new GcsObjectStore({ bucket, apiEndpoint: gcs.url, projectId: 'test', maxRetries: 0 });

async function appWith(options: { databaseUrl?: string; bucket: string }) {
  return buildApp({
    config: loadConfig({
      LOG_LEVEL: 'silent',
      DATABASE_URL: options.databaseUrl ?? ctx.database.connectionString,
    }),
    db: options.databaseUrl ? undefined : ctx.db,
    store: gcsStore(options.bucket),
    logger: pino({ level: 'silent' }),
    listener: false,
    backgroundTasks: false,
  });
}

describe('GET /readyz', () => {
  it('is ready when the database answers and the bucket exists', async () => {
    const app = await appWith({ bucket: 'jobs' });
    try {
      const res = await app.inject({ url: '/readyz' });
      expect([res.statusCode, res.json()]).toEqual([200, { status: 'ok' }]);
    } finally {
      await app.close();
    }
  });

  it('says the bucket is missing, apart from the database, with Retry-After', async () => {
    const app = await appWith({ bucket: 'no-such-bucket' });
    try {
      const res = await app.inject({ url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('2');
      expect(res.json().detail).toEqual({
        code: 'service_unavailable',
        message: 'Object storage cannot be used: the bucket no-such-bucket does not exist.',
        details: { database: 'ok', object_storage: 'unavailable' },
      });
    } finally {
      await app.close();
    }
  });

  it('says the database does not answer, apart from storage', async () => {
    const app = await appWith({ databaseUrl: 'postgres://x:y@127.0.0.1:1/none', bucket: 'jobs' });
    try {
      const res = await app.inject({ url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json().detail).toMatchObject({
        message: 'The database does not answer.',
        details: { database: 'unavailable', object_storage: 'ok' },
      });
    } finally {
      await app.close();
    }
  });
});

describe('Retry-After', () => {
  it('comes with every 503, the one of a database that does not answer included', async () => {
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
      const res = await app.inject({ url: '/v1/jobs', headers: { 'api-key': 'sk_anything' } });
      expect([res.statusCode, res.headers['retry-after']]).toEqual([503, '2']);
    } finally {
      await app.close();
    }
  });

  it('does not come with other answers', async () => {
    const res = await ctx.app.inject({ url: '/v1/jobs' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['retry-after']).toBeUndefined();
  });
});

describe('restore failures in the log', () => {
  it('are one warning each, with the reason, pointer, storage URI and request id', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    });
    const app = await buildApp({
      config: loadConfig({ LOG_LEVEL: 'warn', LOG_REQUESTS: 'false', OFFLOAD_THRESHOLD_BYTES: '1024' }),
      db: ctx.db,
      store: ctx.store,
      logger: pino({ level: 'warn' }, sink),
      listener: false,
      backgroundTasks: false,
    });
    try {
      const tenant = await createTenant(ctx.db);
      const job = await seedJob(ctx, tenant.organizationId, {
        request: {
          documents: [
            { filename: 'a', url: dataUrl(4000).url },
            { filename: 'b', url: dataUrl(4000, 'image/png', 2).url },
          ],
        },
      });
      const paths = job.request_gcs_paths as Record<string, string>;
      for (const uri of Object.values(paths)) await ctx.store.delete(uri);
      const res = await app.inject({
        url: `/v1/jobs/${job.id}?include_request=true`,
        headers: { 'api-key': tenant.key, 'x-request-id': 'req-restore' },
      });
      expect(res.json().warnings).toHaveLength(2);
      const logged = lines.filter((line) => line.reason === 'not_found');
      const seen = logged.map((line) =>
        [line.request_id, line.job_id, line.pointer, line.storage_uri].join(' '),
      );
      expect(seen.sort()).toEqual(
        Object.entries(paths)
          .map(([pointer, uri]) => ['req-restore', job.id, pointer, uri].join(' '))
          .sort(),
      );
    } finally {
      await app.close();
    }
  });
});
