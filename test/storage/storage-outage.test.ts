import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { sweepExpiredJobs } from '../../src/jobs/expiry-sweeper.js';
import { createLogger } from '../../src/logger.js';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import { GcsObjectStore } from '../../src/storage/gcs-store.js';
import type { ObjectStore, StoredObject } from '../../src/storage/object-store.js';
import { INTENT_MARGIN_MS } from '../../src/storage/offloaded-write.js';
import { type FakeGcsServer, startFakeGcsServer } from '../support/fake-gcs-server.js';
import { dataUrl, seedJob } from '../support/job-factory.js';
import { createTenant, createTestApp, type TestContext } from '../support/test-app.js';
import { createWorkerTenant, WORKER_TEST_ENV } from '../workers/worker-helpers.js';

// Creates and completions while object storage hangs or fails, through the app: a write that
// does not answer in STORAGE_WRITE_TIMEOUT_MS is a 503 at that moment, nothing of it stays (no
// row, no object, the lease as it was), and the log says once that storage is down, not once per
// request. GCS is the real client against the test server; its `delay` fault is the hang.

const WRITE_TIMEOUT_MS = 400;
/** How long the server holds a hung write: were the upload not cut, it would land after this. */
const HANG_MS = 1000;
const KiB = 1024;
const ENV = {
  ...WORKER_TEST_ENV,
  OFFLOAD_THRESHOLD_BYTES: '1024',
  STORAGE_WRITE_TIMEOUT_MS: String(WRITE_TIMEOUT_MS),
};

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}
const WARN = 40;
const INFO = 30;

interface Harness {
  /** The test app: its database, and a second, silent app over the same store for seeding. */
  base: TestContext;
  /** The app under test, logging at info into `lines`. */
  app: App;
  lines: LogLine[];
  close(): Promise<void>;
}

/** The app over `store`, with its log captured line by line. */
async function loggingApp(store: ObjectStore): Promise<Harness> {
  const base = await createTestApp({ store, env: ENV });
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const app = await buildApp({
    config: loadConfig({
      ...ENV,
      LOG_LEVEL: 'info',
      LOG_REQUESTS: 'false',
      DATABASE_URL: base.database.connectionString,
    }),
    db: base.db,
    store,
    logger: createLogger({ level: 'info', destination: sink }),
    listener: false,
    backgroundTasks: false,
  });
  await app.ready();
  return {
    base,
    app,
    lines,
    async close() {
      await app.close();
      await base.close();
    },
  };
}

const documents = (sizes: number[], seed: number) => ({
  documents: sizes.map((size, i) => ({
    filename: `d${i}.pdf`,
    url: dataUrl(size, 'application/pdf', seed + i).url,
  })),
});

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
}

const create = (h: Harness, key: string, request: unknown) =>
  timed(() =>
    h.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { 'api-key': key, 'content-type': 'application/json' },
      payload: JSON.stringify({ endpoint: '/v1/documents/classify', request }),
    }),
  );

const jobCount = async (h: Harness, organizationId: string) =>
  (await h.base.db.selectFrom('jobs').select('id').where('organization_id', '=', organizationId).execute())
    .length;

/**
 * The objects whose URI starts with `prefix` that are still to be deleted, and when: those queued
 * for deletion (due at next_attempt_at) and those of intents no commit claimed (at their deadline).
 */
const queuedDeletions = async (h: Harness, prefix: string) => {
  const deletions = await h.base.db
    .selectFrom('storage_deletions')
    .select(['storage_uri', 'next_attempt_at as due'])
    .where('storage_uri', 'like', `${prefix}%`)
    .execute();
  const intents = await h.base.db
    .selectFrom('storage_intents')
    .select(['storage_uri', 'deadline as due'])
    .where('storage_uri', 'like', `${prefix}%`)
    .execute();
  return [...deletions, ...intents].sort((a, b) => a.due.getTime() - b.due.getTime());
};

/** Past the deadline of every intent of these tests (one write round of WRITE_TIMEOUT_MS and the margin). */
const PAST_DEADLINES_MS = INTENT_MARGIN_MS + 10_000;

/** One sweep as if `aheadMs` had passed. */
const sweep = (h: Harness, aheadMs = 0) =>
  sweepExpiredJobs({ ...h.app.jobs, clock: { now: () => new Date(Date.now() + aheadMs) } });

function expectAnsweredAtTheTimeout(ms: number) {
  expect(ms).toBeGreaterThanOrEqual(WRITE_TIMEOUT_MS - 50);
  // Bounded by the timeout, not by the hang (nor by a second wait for deletes).
  expect(ms).toBeLessThan(WRITE_TIMEOUT_MS + 800);
}

describe('object storage outages on GCS', () => {
  let gcs: FakeGcsServer;
  let h: Harness;
  const objectsUnder = (prefix: string) => gcs.objects.names('jobs').filter((n) => n.startsWith(prefix));

  beforeAll(async () => {
    gcs = await startFakeGcsServer({ buckets: ['jobs'] });
    const store = new GcsObjectStore({
      bucket: 'jobs',
      prefix: 'artifacts',
      apiEndpoint: gcs.url,
      projectId: 'test',
      maxRetries: 0,
      // Above 256 KiB an object goes through a resumable upload, in chunks of 256 KiB.
      resumableThresholdBytes: 256 * KiB,
      resumableChunkBytes: 256 * KiB,
    });
    h = await loggingApp(store);
  });
  afterEach(() => gcs.faults.clear());
  afterAll(async () => {
    await h?.close();
    await gcs?.stop();
  });

  it('answers a create whose upload hangs with 503 at STORAGE_WRITE_TIMEOUT_MS; no row, no object', async () => {
    const tenant = await createTenant(h.base.db);
    const prefix = `artifacts/${tenant.organizationId}/`;
    const hang = gcs.faults.add({ op: 'put', prefix, type: 'delay', ms: HANG_MS });

    const { value: res, ms } = await create(h, tenant.key, documents([3000], 1));
    expect(res.statusCode).toBe(503);
    expect(res.json().detail).toEqual({
      code: 'service_unavailable',
      message: 'Object storage is unavailable; the job was not created. Try again.',
    });
    expectAnsweredAtTheTimeout(ms);
    expect(hang.hits).toBe(1);
    expect(await jobCount(h, tenant.organizationId)).toBe(0);

    // The upload was cut, not left running: once the hang is over, nothing has landed.
    await sleep(HANG_MS);
    expect(objectsUnder(prefix)).toEqual([]);
    // Its intent stays, until a while later: a server that had the whole upload could still have
    // stored it after the cut.
    const [queued, ...more] = await queuedDeletions(h, `gs://jobs/${prefix}`);
    expect(more).toEqual([]);
    expect(queued.storage_uri).toMatch(new RegExp(`^gs://jobs/${prefix}job_[^/]+/request/0[.]bin$`));
    expect(queued.due.getTime() - Date.now()).toBeGreaterThan(INTENT_MARGIN_MS - 60_000);

    hang.remove();
    await sweep(h);
    expect(await queuedDeletions(h, `gs://jobs/${prefix}`)).toHaveLength(1);
    await sweep(h, PAST_DEADLINES_MS);
    expect(await queuedDeletions(h, `gs://jobs/${prefix}`)).toEqual([]);
    expect(objectsUnder(prefix)).toEqual([]);
  });

  it('queues the objects written before the hung one, and the sweeper deletes them', async () => {
    const tenant = await createTenant(h.base.db);
    const prefix = `artifacts/${tenant.organizationId}/`;
    // The first upload to arrive goes through, the second hangs.
    gcs.faults.add({ op: 'put', prefix, type: 'delay', ms: HANG_MS, skip: 1 });

    const { value: res, ms } = await create(h, tenant.key, documents([3000, 3100], 10));
    expect(res.statusCode).toBe(503);
    expectAnsweredAtTheTimeout(ms);
    expect(await jobCount(h, tenant.organizationId)).toBe(0);
    // Storage was not asked again after it did not answer: the written object waits for the
    // sweeper, due at once; the cut one is due later.
    expect(objectsUnder(prefix)).toHaveLength(1);
    const queued = await queuedDeletions(h, `gs://jobs/${prefix}`);
    expect(queued.map((q) => q.storage_uri.slice(`gs://jobs/`.length))).toContain(objectsUnder(prefix)[0]);
    expect(queued).toHaveLength(2);

    gcs.faults.clear();
    const swept = await sweep(h);
    expect(swept.objectsDeleted).toBeGreaterThanOrEqual(1);
    expect(objectsUnder(prefix)).toEqual([]);
    await sleep(HANG_MS);
    await sweep(h, PAST_DEADLINES_MS);
    expect(objectsUnder(prefix)).toEqual([]);
    expect(await queuedDeletions(h, `gs://jobs/${prefix}`)).toEqual([]);
  });

  it('cuts a resumable upload whose chunk hangs the same way', async () => {
    const tenant = await createTenant(h.base.db);
    const prefix = `artifacts/${tenant.organizationId}/`;
    const hang = gcs.faults.add({ op: 'put-chunk', prefix, type: 'delay', ms: HANG_MS, skip: 1 });

    const { value: res, ms } = await create(h, tenant.key, documents([600 * KiB], 20));
    expect(res.statusCode).toBe(503);
    expectAnsweredAtTheTimeout(ms);
    expect(hang.hits).toBe(1);
    expect(await jobCount(h, tenant.organizationId)).toBe(0);
    await sleep(HANG_MS);
    expect(objectsUnder(prefix)).toEqual([]);
    expect(await queuedDeletions(h, `gs://jobs/${prefix}`)).toHaveLength(1);
  });

  it('answers a complete whose upload hangs with 503 and leaves the lease as it was', async () => {
    const tenant = await createWorkerTenant(h.base);
    const job = await seedJob(h.base, tenant.organizationId);
    const worker = (url: string, payload: unknown) =>
      h.app.inject({
        method: 'POST',
        url: `/v1/worker${url}`,
        headers: { 'api-key': tenant.workerKey },
        payload: payload as Record<string, unknown>,
      });
    const claim = await worker('/claim', { worker_id: 'w1' });
    const [{ lease_token }] = claim.json().data;
    const leased = async () => ({
      job: await h.base.db.selectFrom('jobs').selectAll().where('id', '=', job.id).executeTakeFirstOrThrow(),
      attempts: await h.base.db.selectFrom('job_attempts').selectAll().where('job_id', '=', job.id).execute(),
    });
    const before = await leased();
    expect(before.job).toMatchObject({ status: 'in_progress', lease_token });

    const prefix = `artifacts/${tenant.organizationId}/${job.id}/`;
    const hang = gcs.faults.add({ op: 'put', prefix, type: 'delay', ms: HANG_MS });
    const response = { status_code: 200, body: { page: dataUrl(5000, 'image/png', 30).url } };
    const { value: res, ms } = await timed(() =>
      worker(`/jobs/${job.id}/complete`, { lease_token, response }),
    );
    expect(res.statusCode).toBe(503);
    expect(res.json().detail).toEqual({
      code: 'service_unavailable',
      message: 'Object storage could not store the response; the lease is unchanged, try again.',
      details: { job_id: job.id },
    });
    expectAnsweredAtTheTimeout(ms);
    expect(await leased()).toEqual(before);
    await sleep(HANG_MS);
    expect(objectsUnder(prefix)).toEqual([]);

    hang.remove();
    const again = await worker(`/jobs/${job.id}/complete`, { lease_token, response });
    expect(again.statusCode).toBe(200);
    expect(again.json().status).toBe('completed');
    const read = await h.app.inject({
      url: `/v1/jobs/${job.id}?include_response=true`,
      headers: { 'api-key': tenant.clientKey },
    });
    expect(read.json().response).toEqual(response);
    expect(read.json().warnings).toBeNull();
  });

  it('logs one warn line when storage goes down and one info line when it is back, not one per request', async () => {
    const tenant = await createTenant(h.base.db);
    const prefix = `artifacts/${tenant.organizationId}/`;
    const stored = await seedJob(h.base, tenant.organizationId, { request: documents([2000], 40) });
    // Starts from storage answering, whatever the tests before left.
    expect((await create(h, tenant.key, documents([2000], 41))).value.statusCode).toBe(201);
    h.lines.length = 0;
    const tracker = () =>
      h.lines
        .filter((l) => l.msg === 'object storage unavailable' || l.msg === 'object storage reachable again')
        .map((l) => [l.level, l.msg]);

    const outage = gcs.faults.add({ prefix, type: 'status', status: 503 });
    for (let i = 0; i < 4; i++) {
      expect((await create(h, tenant.key, documents([2000], 50 + i))).value.statusCode).toBe(503);
    }
    const read = await h.app.inject({
      url: `/v1/jobs/${stored.id}?include_request=true`,
      headers: { 'api-key': tenant.key },
    });
    expect(read.json().warnings).toEqual([
      expect.objectContaining({ details: expect.objectContaining({ reason: 'storage_error' }) }),
    ]);
    expect(tracker()).toEqual([[WARN, 'object storage unavailable']]);
    const warn = h.lines.find((l) => l.msg === 'object storage unavailable');
    expect(warn).toMatchObject({ store: 'gs://jobs/artifacts', reason: expect.stringContaining('503') });

    outage.remove();
    expect((await create(h, tenant.key, documents([2000], 60))).value.statusCode).toBe(201);
    expect((await create(h, tenant.key, documents([2000], 61))).value.statusCode).toBe(201);
    expect(tracker()).toEqual([
      [WARN, 'object storage unavailable'],
      [INFO, 'object storage reachable again'],
    ]);
    expect(h.lines.find((l) => l.msg === 'object storage reachable again')).toMatchObject({
      failed_calls: 5,
    });

    // A hang is an outage too: a second one, a second line.
    gcs.faults.add({ op: 'put', prefix, type: 'delay', ms: HANG_MS });
    expect((await create(h, tenant.key, documents([2000], 70))).value.statusCode).toBe(503);
    expect((await create(h, tenant.key, documents([2000], 71))).value.statusCode).toBe(503);
    expect(tracker()).toEqual([
      [WARN, 'object storage unavailable'],
      [INFO, 'object storage reachable again'],
      [WARN, 'object storage unavailable'],
    ]);
    const warns = h.lines.filter((l) => l.msg === 'object storage unavailable');
    expect(warns[1].reason).toMatch(/aborted/);
  });
});

/** The file store, with a put that stores its object and then never answers (its answer lost). */
class LostAnswerStore implements ObjectStore {
  readonly lost = new Set<string>();
  constructor(private readonly inner: FilesystemObjectStore) {}
  get baseUri() {
    return this.inner.baseUri;
  }
  uriOf(key: string) {
    return this.inner.uriOf(key);
  }
  async put(key: string, bytes: Buffer, options: { contentType: string }): Promise<StoredObject> {
    const stored = await this.inner.put(key, bytes, { contentType: options.contentType });
    if (!this.lost.has(key.split('/')[0])) return stored;
    return new Promise<never>(() => {});
  }
  get(uri: string, options?: { signal?: AbortSignal }) {
    return this.inner.get(uri, options);
  }
  delete(uri: string, options?: { signal?: AbortSignal }) {
    return this.inner.delete(uri, options);
  }
}

describe('a write cut after storage had it', () => {
  let dir: string;
  let store: LostAnswerStore;
  let h: Harness;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lost-answers-'));
    store = new LostAnswerStore(new FilesystemObjectStore(dir));
    h = await loggingApp(store);
  });
  afterAll(async () => {
    await h?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('deletes the object of the cut write too, at the sweep after the delay', async () => {
    const tenant = await createTenant(h.base.db);
    store.lost.add(tenant.organizationId);
    const { value: res, ms } = await create(h, tenant.key, documents([3000], 80));
    expect(res.statusCode).toBe(503);
    expectAnsweredAtTheTimeout(ms);
    expect(await jobCount(h, tenant.organizationId)).toBe(0);

    // The object is there: storage stored it, only its answer never came.
    const [queued] = await queuedDeletions(h, store.uriOf(tenant.organizationId));
    const file = fileURLToPath(queued.storage_uri);
    expect((await readFile(file)).length).toBeGreaterThan(0);

    await sweep(h);
    expect((await readFile(file)).length).toBeGreaterThan(0);
    await sweep(h, PAST_DEADLINES_MS);
    await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await queuedDeletions(h, store.uriOf(tenant.organizationId))).toEqual([]);
  });
});
