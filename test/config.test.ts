import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, EnvSchema, loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('runs on embedded defaults with nothing set', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      basePath: '',
      trustProxy: false,
      databaseUrl: undefined,
      dataDir: path.resolve('.data'),
      storageUrl: `file://${path.resolve('.data/artifacts')}`,
      apiKeyCacheTtlSeconds: 10,
      jobRetentionSeconds: 604_800,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names every setting after its variable, camel-cased', () => {
    const config = loadConfig({
      OFFLOAD_THRESHOLD_BYTES: '100',
      PG_BINDIR: '/opt/pg/bin',
      REAPER_BATCH_SIZE: '7',
    });
    expect(config).toMatchObject({ offloadThresholdBytes: 100, pgBindir: '/opt/pg/bin', reaperBatchSize: 7 });
    expect(Object.keys(config)).toHaveLength(Object.keys(EnvSchema.properties).length);
  });

  it('reads the variables it knows, converting numbers and booleans', () => {
    const config = loadConfig({
      PORT: '9000',
      DATABASE_URL: 'postgres://u:p@db:5432/jobs',
      STORAGE_URL: 'gs://my-bucket/jobs',
      GCS_API_ENDPOINT: 'http://localhost:4443',
      LOG_REQUESTS: 'false',
      TRUST_PROXY: '10.0.0.0/8, 127.0.0.1',
      EXTRA_ENDPOINTS: '/v1/custom/run,/v1/other',
    });
    expect(config).toMatchObject({
      port: 9000,
      databaseUrl: 'postgres://u:p@db:5432/jobs',
      storageUrl: 'gs://my-bucket/jobs',
      gcsApiEndpoint: 'http://localhost:4443',
      logRequests: false,
      trustProxy: ['10.0.0.0/8', '127.0.0.1'],
      extraEndpoints: ['/v1/custom/run', '/v1/other'],
    });
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' })).toMatchObject({ port: 8080, databaseUrl: undefined });
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://localhost/db'],
    ['STORAGE_URL', 's3://bucket'],
    ['STORAGE_URL', 'gs://'],
    ['GCS_API_ENDPOINT', 'localhost:4443'],
    ['LOG_LEVEL', 'loud'],
    ['BASE_PATH', 'jobs'],
    ['BASE_PATH', '/jobs/'],
    ['API_KEY_CACHE_TTL_SECONDS', '-1'],
    ['TRUST_PROXY', 'the gateway'],
    ['EXTRA_ENDPOINTS', 'custom'],
  ])('stops on %s=%s with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(
      new RegExp(`^invalid configuration: ${name}|^${name}:`),
    );
  });
});
