import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sweepExpiredJobs } from '../../src/jobs/expiry-sweeper.js';
import type { ObjectStore, StoredObject } from '../../src/storage/object-store.js';
import { INTENT_MARGIN_MS, writeWithOffload } from '../../src/storage/offloaded-write.js';
import { dataUrl, seedJob } from '../support/job-factory.js';
import { type StorageBackend, startStorageBackend } from '../support/storage-backends.js';
import { createTestApp, type TestContext } from '../support/test-app.js';
import {
  claimOk,
  createWorkerTenant,
  jobRow,
  testClock,
  WORKER_TEST_ENV,
  workerClient,
} from '../workers/worker-helpers.js';

// The intents of a write's objects: recorded before the first upload, taken over by the commit
// that makes the objects live, dropped with the objects of a write that did not happen; and when
// the sweeper has given up on them first, the commit does not happen.

/** The backend's store, calling `afterPut` once each object is stored, before put answers. */
function watchedStore(inner: ObjectStore, afterPut: () => ((key: string) => Promise<void>) | undefined) {
  const store: ObjectStore = {
    baseUri: inner.baseUri,
    uriOf: (key) => inner.uriOf(key),
    async put(key, bytes, options): Promise<StoredObject> {
      const stored = await inner.put(key, bytes, options);
      await afterPut()?.(key);
      return stored;
    },
    get: (uri, options) => inner.get(uri, options),
    delete: (uri, options) => inner.delete(uri, options),
  };
  return store;
}

describe('intents of offloaded objects', () => {
  let backend: StorageBackend;
  let ctx: TestContext;
  let afterPut: ((key: string) => Promise<void>) | undefined;
  const clock = testClock();

  beforeAll(async () => {
    backend = await startStorageBackend('file');
    ctx = await createTestApp({
      store: watchedStore(backend.store, () => afterPut),
      clock,
      env: { ...WORKER_TEST_ENV, OFFLOAD_THRESHOLD_BYTES: '1024' },
    });
  });
  afterEach(() => {
    afterPut = undefined;
  });
  afterAll(async () => {
    await ctx?.close();
    await backend?.close();
  });

  const intents = () => ctx.db.selectFrom('storage_intents').selectAll().orderBy('storage_uri').execute();
  const deletions = () => ctx.db.selectFrom('storage_deletions').selectAll().execute();
  const artifactUris = async (jobId: string) =>
    (await ctx.db.selectFrom('job_artifacts').select('storage_uri').where('job_id', '=', jobId).execute())
      .map((r) => r.storage_uri)
      .sort();
  const objectsOf = async (organizationId: string) =>
    (await backend.objectUris()).filter((uri) => uri.includes(`/${organizationId}/`));

  const create = (key: string, request: unknown, headers: Record<string, string> = {}) =>
    ctx.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { 'api-key': key, 'content-type': 'application/json', ...headers },
      payload: JSON.stringify({ endpoint: '/v1/documents/extract', request }),
    });
  const documents = (seed: number, count = 3) => ({
    documents: Array.from({ length: count }, (_, i) => ({
      filename: `d${i}.pdf`,
      url: dataUrl(2000 + i, 'application/pdf', seed + i).url,
    })),
  });

  /** The sweeper, run from inside an upload as if the grace period had passed meanwhile. */
  const sweepPastGrace = () =>
    sweepExpiredJobs({
      ...ctx.jobs,
      clock: { now: () => new Date(clock.now().getTime() + INTENT_MARGIN_MS + 60_000) },
    });

  it('records every object before its upload starts, with a deadline past the grace period, and the create takes them over', async () => {
    const tenant = await createWorkerTenant(ctx);
    const seen: { key: string; intents: string[] }[] = [];
    afterPut = async (key) => {
      seen.push({ key, intents: (await intents()).map((i) => i.storage_uri) });
    };
    const res = await create(tenant.clientKey, documents(1));
    expect(res.statusCode).toBe(201);
    const owned = await artifactUris(res.json().id);
    expect(owned).toHaveLength(3);
    // The first upload already found all three intents.
    expect(seen).toHaveLength(3);
    for (const { intents: atPut } of seen) expect(atPut).toEqual(owned);
    expect(await intents()).toEqual([]);
    expect(await objectsOf(tenant.organizationId)).toEqual(owned);
  });

  it('gives the intents the job id and a deadline of the grace period', async () => {
    const tenant = await createWorkerTenant(ctx);
    let recorded: Awaited<ReturnType<typeof intents>> = [];
    afterPut = async () => {
      recorded = await intents();
    };
    const before = clock.now().getTime();
    const res = await create(tenant.clientKey, documents(10, 1));
    expect(res.statusCode).toBe(201);
    expect(recorded).toHaveLength(1);
    expect(recorded[0].job_id).toBe(res.json().id);
    const graceMs = recorded[0].deadline.getTime() - before;
    // One round of writes of STORAGE_WRITE_TIMEOUT_MS (30 s by default), then the margin.
    expect(graceMs).toBeGreaterThanOrEqual(ctx.config.storageWriteTimeoutMs + INTENT_MARGIN_MS);
    expect(graceMs).toBeLessThan(ctx.config.storageWriteTimeoutMs + INTENT_MARGIN_MS + 10_000);
  });

  it('records nothing for a create without offloaded parts', async () => {
    const tenant = await createWorkerTenant(ctx);
    const res = await create(tenant.clientKey, {
      document: { filename: 'a.pdf', url: 'https://x.test/a.pdf' },
    });
    expect(res.statusCode).toBe(201);
    expect(await intents()).toEqual([]);
    expect(await artifactUris(res.json().id)).toEqual([]);
  });

  it('drops the intents with the objects of creates that lost the idempotency key', async () => {
    const tenant = await createWorkerTenant(ctx);
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => create(tenant.clientKey, documents(20, 2), { 'idempotency-key': 'k' })),
    );
    expect(answers.filter((a) => a.statusCode === 201)).toHaveLength(1);
    expect(await intents()).toEqual([]);
    expect(await deletions()).toEqual([]);
    expect(await objectsOf(tenant.organizationId)).toEqual(await artifactUris(answers[0].json().id));
  });

  it('does not create a job whose intents the sweeper gave up on: 503, and no object left', async () => {
    const tenant = await createWorkerTenant(ctx);
    let swept: Awaited<ReturnType<typeof sweepExpiredJobs>> | undefined;
    let puts = 0;
    // The last upload ends after the deadline: the sweeper has queued the objects and deleted them.
    afterPut = async () => {
      if (++puts === 2) swept = await sweepPastGrace();
    };
    const res = await create(tenant.clientKey, documents(30, 2));
    expect(res.statusCode).toBe(503);
    expect(res.json().detail).toEqual({
      code: 'service_unavailable',
      message: 'Storing the request took too long; the job was not created. Try again.',
    });
    expect(swept).toMatchObject({ abandoned: 2, objectsDeleted: 2, objectsFailed: 0 });
    expect(
      await ctx.db
        .selectFrom('jobs')
        .select('id')
        .where('organization_id', '=', tenant.organizationId)
        .execute(),
    ).toEqual([]);
    expect(await objectsOf(tenant.organizationId)).toEqual([]);
    expect(await intents()).toEqual([]);
    expect(await deletions()).toEqual([]);
  });

  it('does not complete with a response whose intents the sweeper gave up on: 503, the lease unchanged', async () => {
    const tenant = await createWorkerTenant(ctx);
    const worker = workerClient(ctx, tenant.workerKey);
    const job = await seedJob(ctx, tenant.organizationId);
    const [{ lease_token }] = await claimOk(worker);
    const before = await jobRow(ctx, job.id);
    const response = { status_code: 200, body: { image: dataUrl(5000, 'image/png', 40).url } };

    afterPut = async () => {
      await sweepPastGrace();
    };
    const res = await worker.complete(job.id, { lease_token, response });
    expect(res.statusCode).toBe(503);
    expect(res.json().detail).toEqual({
      code: 'service_unavailable',
      message: 'Storing the response took too long; the lease is unchanged, try again.',
      details: { job_id: job.id },
    });
    expect(await jobRow(ctx, job.id)).toEqual(before);
    expect(await artifactUris(job.id)).toEqual([]);
    expect((await objectsOf(tenant.organizationId)).filter((uri) => uri.includes('/response/'))).toEqual([]);
    expect(await intents()).toEqual([]);

    afterPut = undefined;
    const again = await worker.complete(job.id, { lease_token, response });
    expect(again.statusCode).toBe(200);
    const read = await ctx.app.inject({
      url: `/v1/jobs/${job.id}?include_response=true`,
      headers: { 'api-key': tenant.clientKey },
    });
    expect(read.json().response).toEqual(response);
    expect(await intents()).toEqual([]);
  });

  it('drops the intents of a complete whose lease ended during its upload, with its objects', async () => {
    const tenant = await createWorkerTenant(ctx);
    const worker = workerClient(ctx, tenant.workerKey);
    const job = await seedJob(ctx, tenant.organizationId);
    const [{ lease_token }] = await claimOk(worker);
    // Another report ends the lease while this one uploads.
    afterPut = async () => {
      afterPut = undefined;
      expect(
        (await worker.fail(job.id, { lease_token, error: { code: 'x', message: 'y' }, retryable: false }))
          .statusCode,
      ).toBe(200);
    };
    const response = { status_code: 200, body: { image: dataUrl(5000, 'image/png', 50).url } };
    const res = await worker.complete(job.id, { lease_token, response });
    expect(res.statusCode).toBe(409);
    expect(await artifactUris(job.id)).toEqual([]);
    expect((await objectsOf(tenant.organizationId)).filter((uri) => uri.includes('/response/'))).toEqual([]);
    expect(await intents()).toEqual([]);
    expect(await deletions()).toEqual([]);
  });

  describe('a write that throws', () => {
    const offloadFor = (organizationId: string, jobId: string) =>
      [
        { document: { url: dataUrl(3000, 'application/pdf', 60).url } },
        {
          jobId,
          keyPrefix: `${organizationId}/${jobId}`,
          role: 'request' as const,
          settings: ctx.config,
          unavailable: { message: 'unavailable' },
        },
      ] as const;

    it('deletes the objects at once when the database refused it: it did not happen', async () => {
      const tenant = await createWorkerTenant(ctx);
      const [document, options] = offloadFor(tenant.organizationId, 'job_refused');
      const refused = await writeWithOffload(ctx.jobs, document, options, async () => {
        // Any error the server answered: the statement, and its transaction, did not happen.
        await sql`select * from no_such_table`.execute(ctx.db);
        return 'written';
      }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: '42P01' });
      expect(await objectsOf(tenant.organizationId)).toEqual([]);
      expect(await intents()).toEqual([]);
      expect(await deletions()).toEqual([]);
    });

    it('leaves the objects to their intents when its outcome is unknown: it may have committed', async () => {
      const tenant = await createWorkerTenant(ctx);
      const [document, options] = offloadFor(tenant.organizationId, 'job_unknown');
      const lost = new Error('Connection terminated unexpectedly');
      await expect(
        writeWithOffload(ctx.jobs, document, options, async () => {
          throw lost;
        }),
      ).rejects.toBe(lost);
      const [object] = await objectsOf(tenant.organizationId);
      expect(object).toMatch(/\/job_unknown\/request\/0\.bin$/);
      expect((await intents()).map((i) => i.storage_uri)).toEqual([object]);

      // Had the commit happened, it would have claimed the intent; it did not: past the grace
      // period the sweeper deletes the object.
      const swept = await sweepPastGrace();
      expect(swept).toMatchObject({ abandoned: 1, objectsDeleted: 1 });
      expect(await objectsOf(tenant.organizationId)).toEqual([]);
      expect(await intents()).toEqual([]);
    });
  });
});
