import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepExpiredJobs } from '../../src/jobs/expiry-sweeper.js';
import { INTENT_MARGIN_MS } from '../../src/storage/offloaded-write.js';
import { dataUrl, seedJob } from '../support/job-factory.js';
import { type BackendKind, type StorageBackend, startStorageBackend } from '../support/storage-backends.js';
import { createTestApp, type TestContext } from '../support/test-app.js';
import {
  claimOk,
  createWorkerTenant,
  testClock,
  WORKER_TEST_ENV,
  type WorkerClient,
  workerClient,
} from './worker-helpers.js';

// A complete whose response is offloaded (data URLs over the default 16 KiB threshold), resent
// one after the other and sent twice at once under the same lease: each report writes under a
// folder of its own, exactly one commits, the retrieve restores that one byte for byte, and after
// the sweep the only objects left of the job are the ones its artifact rows name.

const KiB = 1024;

/** Two offloaded images, so that a restore mixing two reports would show. */
const bigResponse = (seed: number) => ({
  status_code: 200,
  body: {
    pages: [
      { image: dataUrl(20 * KiB, 'image/png', seed).url },
      { image: dataUrl(24 * KiB, 'image/png', seed + 1000).url },
    ],
    seed,
  },
});

describe.each(['file', 'gcs'] as BackendKind[])('resent completes on the %s store', (kind) => {
  let backend: StorageBackend;
  let ctx: TestContext;
  let tenant: Awaited<ReturnType<typeof createWorkerTenant>>;
  let worker: WorkerClient;
  const clock = testClock();

  beforeAll(async () => {
    backend = await startStorageBackend(kind);
    ctx = await createTestApp({ store: backend.store, env: WORKER_TEST_ENV, clock });
    tenant = await createWorkerTenant(ctx);
    worker = workerClient(ctx, tenant.workerKey);
  });
  afterAll(async () => {
    await ctx?.close();
    await backend?.close();
  });

  const claimNew = async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    const claimed = await claimOk(worker);
    expect(claimed.map((c) => c.job.id)).toEqual([job.id]);
    return { jobId: job.id, leaseToken: claimed[0].lease_token };
  };

  const readResponse = async (jobId: string) => {
    const res = await ctx.app.inject({
      url: `/v1/jobs/${jobId}?include_response=true`,
      headers: { 'api-key': tenant.clientKey },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().warnings).toBeNull();
    return { parsed: res.json().response, raw: res.body };
  };

  /** The objects of the job in the store, and the URIs its artifact rows name. */
  const objectsOf = async (jobId: string) => {
    const rows = await ctx.db
      .selectFrom('job_artifacts')
      .select('storage_uri')
      .where('job_id', '=', jobId)
      .execute();
    const all = await backend.objectUris();
    return {
      stored: all.filter((uri) => uri.includes(`/${jobId}/`)),
      owned: rows.map((r) => r.storage_uri).sort(),
    };
  };

  const pendingOf = async (jobId: string) => ({
    intents: await ctx.db.selectFrom('storage_intents').selectAll().where('job_id', '=', jobId).execute(),
    deletions: await ctx.db.selectFrom('storage_deletions').selectAll().where('job_id', '=', jobId).execute(),
  });

  /** A sweep as the expiry sweeper runs it, once every intent's grace period has passed. */
  const sweepPastGrace = async () => {
    clock.advance((INTENT_MARGIN_MS + 60_000) / 1000);
    return sweepExpiredJobs({ ...ctx.jobs, clock });
  };

  /** The restored response has exactly the bytes sent: same JSON, same data URL strings. */
  const expectRestored = (
    restored: { parsed: unknown; raw: string },
    sent: ReturnType<typeof bigResponse>,
  ) => {
    expect(restored.parsed).toEqual(sent);
    for (const page of sent.body.pages) expect(restored.raw).toContain(JSON.stringify(page.image));
  };

  it('keeps the first of three identical reports, restores it byte for byte, and leaves no object of the resends', async () => {
    const { jobId, leaseToken } = await claimNew();
    const response = bigResponse(1);
    const answers = [];
    for (let i = 0; i < 3; i++) {
      answers.push(await worker.complete(jobId, { lease_token: leaseToken, response }));
    }
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200]);
    expect(answers[2].json()).toEqual(answers[0].json());
    expectRestored(await readResponse(jobId), response);

    const before = await objectsOf(jobId);
    expect(before.owned).toHaveLength(2);
    // The resends' objects were deleted as soon as their completes found the lease gone.
    expect(before.stored).toEqual(before.owned);

    await sweepPastGrace();
    expect(await objectsOf(jobId)).toEqual(before);
    expect(await pendingOf(jobId)).toEqual({ intents: [], deletions: [] });
    expectRestored(await readResponse(jobId), response);
    expect(await backend.emptyFolders()).toEqual([]);
  });

  it('lets one of two reports sent at once win whole; the other leaves nothing once swept', async () => {
    const { jobId, leaseToken } = await claimNew();
    const responses = [bigResponse(10), bigResponse(20)];
    const answers = await Promise.all(
      responses.map((response) => worker.complete(jobId, { lease_token: leaseToken, response })),
    );
    // The loser finds its lease ended with the outcome it reports: a resend, answered with the job.
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200]);
    expect(answers[1].json()).toEqual(answers[0].json());

    const restored = await readResponse(jobId);
    const winner = responses.find((r) => r.body.seed === restored.parsed.body.seed);
    if (!winner) throw new Error(`restored an unknown response: seed ${restored.parsed.body.seed}`);
    expectRestored(restored, winner);

    await sweepPastGrace();
    const after = await objectsOf(jobId);
    expect(after.owned).toHaveLength(2);
    expect(after.stored).toEqual(after.owned);
    // Both of the winner's objects live in one report's folder.
    const folders = new Set(after.owned.map((uri) => uri.replace(/\/response\/[^/]+$/, '')));
    expect(folders.size).toBe(1);
    expect(await pendingOf(jobId)).toEqual({ intents: [], deletions: [] });
    expectRestored(await readResponse(jobId), winner);
    expect(await backend.emptyFolders()).toEqual([]);
  });

  it('does the same for many pairs at once', async () => {
    const jobs = [];
    for (let i = 0; i < 6; i++) jobs.push(await claimNew());
    await Promise.all(
      jobs.flatMap(({ jobId, leaseToken }, i) =>
        [100 + i, 200 + i].map((seed) =>
          worker.complete(jobId, { lease_token: leaseToken, response: bigResponse(seed) }),
        ),
      ),
    );
    await sweepPastGrace();
    for (const { jobId } of jobs) {
      const { stored, owned } = await objectsOf(jobId);
      expect(owned).toHaveLength(2);
      expect(stored).toEqual(owned);
      expect(await pendingOf(jobId)).toEqual({ intents: [], deletions: [] });
    }
    expect(await backend.emptyFolders()).toEqual([]);
  });
});
