import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import { GcsObjectStore } from '../../src/storage/gcs-store.js';
import { type FakeGcsServer, startFakeGcsServer } from '../support/fake-gcs-server.js';
import { HangingReadsStore } from '../support/hanging-reads-store.js';
import { dataUrl, seedJob } from '../support/job-factory.js';
import { createTestApp, type TestContext } from '../support/test-app.js';
import {
  attemptRows,
  claimOk,
  createWorkerTenant,
  jobRow,
  type WorkerClient,
  workerClient,
} from './worker-helpers.js';

// A bucket that freezes: every read hangs. With one second for an answer's restores, 40 jobs
// restored four at a time would take ten seconds if each artifact had its own second; one
// deadline per answer makes it about one.
const JOBS = 40;
const ENV = { OFFLOAD_THRESHOLD_BYTES: '1024', RESTORE_TIMEOUT_MS: '1000', REAPER_INTERVAL_SECONDS: '3600' };

interface Backend {
  name: string;
  start(): Promise<TestContext>;
  /** Every read of an object from now on hangs (released by `thaw`). */
  freeze(): void;
  thaw(): void;
  stop(): Promise<void>;
}

function filesystemBackend(): Backend {
  let dir: string;
  let store: HangingReadsStore;
  return {
    name: 'the file store (reads no signal reaches)',
    async start() {
      dir = await mkdtemp(path.join(os.tmpdir(), 'restore-deadlines-'));
      store = new HangingReadsStore(new FilesystemObjectStore(dir));
      return createTestApp({ store, env: ENV });
    },
    freeze: () => store.hangAll(),
    thaw: () => store?.release(),
    stop: () => rm(dir, { recursive: true, force: true }),
  };
}

function gcsBackend(): Backend {
  let gcs: FakeGcsServer;
  let fault: { remove(): void } | undefined;
  return {
    name: 'GCS (downloads held by the server)',
    async start() {
      gcs = await startFakeGcsServer({ buckets: ['jobs'] });
      const store = new GcsObjectStore({
        bucket: 'jobs',
        apiEndpoint: gcs.url,
        projectId: 'test',
        maxRetries: 0,
      });
      return createTestApp({ store, env: ENV });
    },
    freeze() {
      fault = gcs.faults.add({ op: 'get', prefix: '', type: 'delay', ms: 60_000 });
    },
    thaw() {
      fault?.remove();
      fault = undefined;
    },
    stop: () => gcs.stop(),
  };
}

describe.each([filesystemBackend(), gcsBackend()])('with $name frozen', (backend) => {
  let ctx: TestContext;
  let tenant: Awaited<ReturnType<typeof createWorkerTenant>>;
  let worker: WorkerClient;

  beforeAll(async () => {
    ctx = await backend.start();
  });
  afterAll(async () => {
    backend.thaw();
    await ctx?.close();
    await backend.stop();
  });

  beforeEach(async () => {
    backend.thaw();
    tenant = await createWorkerTenant(ctx);
    worker = workerClient(ctx, tenant.workerKey);
    for (let i = 0; i < JOBS; i++) {
      await seedJob(ctx, tenant.organizationId, {
        request: { document: { filename: `${i}.pdf`, url: dataUrl(2048, 'application/pdf', i).url } },
      });
    }
    backend.freeze();
  });

  const timed = async <T>(run: () => Promise<T>) => {
    const started = performance.now();
    const value = await run();
    return { value, ms: performance.now() - started };
  };

  it('a claim answers within its restore deadline, with warnings and leases that have not run out', async () => {
    const { value: claimed, ms } = await timed(() => claimOk(worker, { limit: JOBS, lease_seconds: 60 }));
    expect(claimed).toHaveLength(JOBS);
    expect(ms).toBeLessThan(4000);
    const now = Math.floor(Date.now() / 1000);
    for (const { job, lease_expires_at } of claimed) {
      expect(lease_expires_at).toBeGreaterThan(now + 50);
      expect(job.request).toEqual({ document: { filename: expect.any(String), url: null } });
      expect(job.warnings).toEqual([
        expect.objectContaining({
          code: 'artifact_restore_failed',
          details: expect.objectContaining({ reason: 'timeout' }),
        }),
      ]);
    }
    // Every lease is live: a heartbeat renews it, and no attempt was used up by a lapse.
    const [first] = claimed;
    expect((await worker.heartbeat(first.job.id, { lease_token: first.lease_token })).statusCode).toBe(200);
    expect((await attemptRows(ctx, first.job.id)).map((a) => a.outcome)).toEqual([null]);
    expect((await jobRow(ctx, first.job.id)).attempt_count).toBe(1);
  });

  it('a claim with a short lease answers within half of it', async () => {
    const { value: claimed, ms } = await timed(() => claimOk(worker, { limit: JOBS, lease_seconds: 1 }));
    expect(claimed).toHaveLength(JOBS);
    // Half a second for the restores; the lease of one second has not run out at the answer.
    expect(ms).toBeLessThan(1000);
    const [first] = claimed;
    expect((await worker.heartbeat(first.job.id, { lease_token: first.lease_token })).statusCode).toBe(200);
  });

  it('a list page with include_request answers within one deadline, not one per job', async () => {
    const { value: res, ms } = await timed(() =>
      ctx.app.inject({
        url: '/v1/jobs?limit=40&include_request=true',
        headers: { 'api-key': tenant.clientKey },
      }),
    );
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toHaveLength(JOBS);
    expect(ms).toBeLessThan(4000);
    expect(res.json().data.every((job: { warnings: unknown[] }) => job.warnings?.length === 1)).toBe(true);
  });
});
