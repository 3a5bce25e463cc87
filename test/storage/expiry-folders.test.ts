import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepExpiredJobs } from '../../src/jobs/expiry-sweeper.js';
import { mapWithConcurrency } from '../../src/lib/concurrency.js';
import { dataUrl } from '../support/job-factory.js';
import { type StorageBackend, startStorageBackend } from '../support/storage-backends.js';
import { createTestApp, type TestContext } from '../support/test-app.js';
import {
  claimOk,
  createWorkerTenant,
  testClock,
  WORKER_TEST_ENV,
  workerClient,
} from '../workers/worker-helpers.js';

// Expiry on the file store deletes the folders it empties too: a job's objects live two to four
// folders deep (`<org>/<job>/request/`, `<org>/<job>/<lease>/<report>/response/`), and before
// those were removed every expired job left its folders behind, for ever.

const JOBS = 300;
const RETENTION_SECONDS = 3600;

describe('expiry on the file store', () => {
  let backend: StorageBackend;
  let ctx: TestContext;
  const clock = testClock();

  beforeAll(async () => {
    backend = await startStorageBackend('file');
    ctx = await createTestApp({
      store: backend.store,
      clock,
      env: {
        ...WORKER_TEST_ENV,
        OFFLOAD_THRESHOLD_BYTES: '1024',
        JOB_RETENTION_SECONDS: String(RETENTION_SECONDS),
      },
    });
  });
  afterAll(async () => {
    await ctx?.close();
    await backend?.close();
  });

  it(`leaves no empty folder after expiring ${JOBS} jobs with request and response artifacts`, async () => {
    const tenant = await createWorkerTenant(ctx);
    const worker = workerClient(ctx, tenant.workerKey);
    await mapWithConcurrency(
      Array.from({ length: JOBS }, (_, i) => i),
      8,
      async (i) => {
        const res = await ctx.app.inject({
          method: 'POST',
          url: '/v1/jobs',
          headers: { 'api-key': tenant.clientKey, 'content-type': 'application/json' },
          payload: JSON.stringify({
            endpoint: '/v1/documents/extract',
            request: { document: { filename: 'a.pdf', url: dataUrl(2000, 'application/pdf', i).url } },
          }),
        });
        expect(res.statusCode).toBe(201);
      },
    );
    let completed = 0;
    while (completed < JOBS) {
      const claimed = await claimOk(worker, { limit: 100 });
      expect(claimed.length).toBeGreaterThan(0);
      await mapWithConcurrency(claimed, 8, async ({ job, lease_token }) => {
        const response = { status_code: 200, body: { image: dataUrl(3000, 'image/png', completed).url } };
        const res = await worker.complete(job.id, { lease_token, response });
        expect(res.statusCode).toBe(200);
      });
      completed += claimed.length;
    }
    expect(await backend.objectUris()).toHaveLength(2 * JOBS);
    const base = fileURLToPath(backend.store.baseUri);
    const folders = (await readdir(base, { recursive: true, withFileTypes: true })).filter((e) =>
      e.isDirectory(),
    );
    // One organization folder, and per job: its own, request/, and <lease>/<report>/response/.
    expect(folders).toHaveLength(1 + 5 * JOBS);

    clock.advance(RETENTION_SECONDS + 1);
    const swept = await sweepExpiredJobs({ ...ctx.jobs, clock });
    expect(swept).toEqual({ expired: JOBS, abandoned: 0, objectsDeleted: 2 * JOBS, objectsFailed: 0 });
    expect(await backend.objectUris()).toEqual([]);
    expect(await backend.emptyFolders()).toEqual([]);
    // The base folder itself stays, empty.
    expect(await readdir(base)).toEqual([]);
  });
});
