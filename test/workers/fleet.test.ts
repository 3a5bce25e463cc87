import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { setMaxInFlight } from '../../src/auth/organization-repository.js';
import { seedJob } from '../support/job-factory.js';
import { addKey, createTenant, createTestApp, type TestContext, useTestApp } from '../support/test-app.js';
import {
  type Claimed,
  claimOk,
  createWorkerTenant,
  jobRow,
  reap,
  testClock,
  WORKER_TEST_ENV,
  type WorkerClient,
  workerClient,
} from './worker-helpers.js';

const clock = testClock();
const ctx = useTestApp({ env: WORKER_TEST_ENV, clock });

let fleetKey: string;
let fleet: WorkerClient;
beforeAll(async () => {
  // A fleet key belongs to no organization (migration 0007).
  fleetKey = (await addKey(ctx.db, null, 'fleet')).key;
  fleet = workerClient(ctx, fleetKey);
});

/** Queued jobs of one organization in one statement, oldest first, as a backlog loaded at once. */
async function queueJobs(organizationId: string, count: number, db: TestContext['db'] = ctx.db) {
  const prefix = organizationId.slice(4, 9);
  await sql`
    insert into jobs (id, organization_id, status, endpoint, request, max_attempts, created_at, updated_at,
      expires_at, run_after)
    select 'job_' || ${prefix}::text || lpad(i::text, 16, '0'), ${organizationId}, 'queued', '/v1/documents/extract',
      '{"document": {"filename": "a.txt", "url": "https://files.example/a.txt"}}', 3, t, t,
      t + interval '7 days', t
    from generate_series(1, ${count}::int) i,
      lateral (select now() - interval '1 hour' + make_interval(secs => i) as t) ts`.execute(db);
}

const completeAll = async (worker: WorkerClient, claimed: Claimed[]) => {
  if (claimed.length === 0) return;
  const res = await worker.reports(
    claimed.map((c) => ({
      type: 'complete',
      job_id: c.job.id,
      lease_token: c.lease_token,
      response: { status_code: 200, body: {} },
    })),
  );
  expect(res.json().data.every((d: { status_code: number }) => d.status_code === 200)).toBe(true);
};

describe('fleet keys', () => {
  it('claim and report the jobs of every organization', async () => {
    const a = await createWorkerTenant(ctx);
    const b = await createWorkerTenant(ctx);
    const jobA = await seedJob(ctx, a.organizationId);
    const jobB = await seedJob(ctx, b.organizationId);
    const claimed = await claimOk(fleet, {
      limit: 10,
      organization_ids: [a.organizationId, b.organizationId],
    });
    expect(claimed.map((c) => [c.job.id, c.job.organization_id]).sort()).toEqual(
      [
        [jobA.id, a.organizationId],
        [jobB.id, b.organizationId],
      ].sort(),
    );
    const [first, second] = claimed;
    expect((await fleet.heartbeat(first.job.id, { lease_token: first.lease_token })).statusCode).toBe(200);
    expect(
      (
        await fleet.complete(first.job.id, {
          lease_token: first.lease_token,
          response: { status_code: 200, body: {} },
        })
      ).json().status,
    ).toBe('completed');
    await completeAll(fleet, [second]);
    expect((await jobRow(ctx, second.job.id)).status).toBe('completed');
  });

  it('may not use the routes of clients', async () => {
    const res = await ctx.app.inject({ url: '/v1/jobs', headers: { 'api-key': fleetKey } });
    expect(res.statusCode).toBe(403);
    expect(res.json().detail.code).toBe('forbidden');
  });

  it("leave an organization's worker key to its own jobs, and refuse it organization_ids of others", async () => {
    const mine = await createWorkerTenant(ctx);
    const other = await createWorkerTenant(ctx);
    await seedJob(ctx, other.organizationId);
    const worker = workerClient(ctx, mine.workerKey);
    expect(await claimOk(worker, { limit: 10 })).toEqual([]);
    const res = await worker.claim({ organization_ids: [other.organizationId] });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail.details.field).toBe('organization_ids');
  });

  it('filter by organization_ids and endpoints together', async () => {
    const a = await createWorkerTenant(ctx);
    const b = await createWorkerTenant(ctx);
    const parse = await seedJob(ctx, a.organizationId, { endpoint: '/v1/documents/parse' });
    await seedJob(ctx, a.organizationId, { endpoint: '/v1/documents/extract' });
    await seedJob(ctx, b.organizationId, { endpoint: '/v1/documents/parse' });
    const claimed = await claimOk(fleet, {
      limit: 10,
      organization_ids: [a.organizationId],
      endpoints: ['documents/parse'],
    });
    expect(claimed.map((c) => c.job.id)).toEqual([parse.id]);
  });

  it('leave fleet-claimed jobs to the reaper and to cancellation as any other', async () => {
    const t = await createWorkerTenant(ctx);
    const reaped = await seedJob(ctx, t.organizationId);
    const cancelled = await seedJob(ctx, t.organizationId);
    const claimed = await claimOk(fleet, {
      limit: 2,
      organization_ids: [t.organizationId],
      lease_seconds: 30,
    });
    const byId = new Map(claimed.map((c) => [c.job.id, c]));
    await ctx.app.inject({
      method: 'POST',
      url: `/v1/jobs/${cancelled.id}/cancel`,
      headers: { 'api-key': t.clientKey },
    });
    const beat = await fleet.heartbeat(cancelled.id, { lease_token: byId.get(cancelled.id)?.lease_token });
    expect(beat.json().cancel_requested).toBe(true);
    expect(
      (await fleet.cancelled(cancelled.id, { lease_token: byId.get(cancelled.id)?.lease_token })).json()
        .status,
    ).toBe('cancelled');
    clock.advance(31);
    await reap(ctx, clock);
    expect((await jobRow(ctx, reaped.id)).status).toBe('queued');
    expect((await jobRow(ctx, reaped.id)).last_failure_code).toBe('lease_expired');
  });
});

describe('fair claims', () => {
  it('start every job of B, C and D before 5% of the 20,000 of A', async () => {
    // A database of its own: the fleet claims every organization's jobs, with no filter.
    const local = await createTestApp({ env: WORKER_TEST_ENV });
    try {
      const localFleet = workerClient(local, (await addKey(local.db, null, 'fleet')).key);
      const a = await createTenant(local.db, 'client');
      const small = await Promise.all([1, 2, 3].map(() => createTenant(local.db, 'client')));
      // A's backlog is the oldest: a claim in creation order would take only A's jobs.
      await queueJobs(a.organizationId, 20_000, local.db);
      for (const org of small) await queueJobs(org.organizationId, 200, local.db);
      const smallIds = small.map((t) => t.organizationId);
      const started = new Map<string, number>();
      while (smallIds.some((id) => (started.get(id) ?? 0) < 200)) {
        const claimed = await claimOk(localFleet, { limit: 100 });
        expect(claimed.length).toBeGreaterThan(0);
        for (const c of claimed) {
          const org = c.job.organization_id as string;
          started.set(org, (started.get(org) ?? 0) + 1);
        }
        await completeAll(localFleet, claimed);
      }
      expect(started.get(a.organizationId)).toBeLessThan(1000);
    } finally {
      await local.close();
    }
  }, 60_000);

  it('serve every organization in turn when more have jobs than a claim takes', async () => {
    const tenants = await Promise.all(Array.from({ length: 12 }, () => createTenant(ctx.db, 'client')));
    for (const t of tenants) await queueJobs(t.organizationId, 5);
    const ids = tenants.map((t) => t.organizationId);
    const seen = new Set<string>();
    // Three claims of 4 jobs: the rotation makes them serve 12 different organizations.
    for (let i = 0; i < 3; i++) {
      const claimed = await claimOk(fleet, { limit: 4, organization_ids: ids });
      expect(claimed).toHaveLength(4);
      for (const c of claimed) seen.add(c.job.organization_id as string);
      await completeAll(fleet, claimed);
    }
    expect(seen.size).toBe(12);
  });
});

describe('max_in_flight', () => {
  it('is never exceeded under 8 concurrent claimers, and the other organizations are claimed instead', async () => {
    const limited = await createTenant(ctx.db, 'client');
    const free = await createTenant(ctx.db, 'client');
    await setMaxInFlight(ctx.db, limited.organizationId, 5);
    // Claims learn of a new limit within a second (workers/limited-organizations.ts); until then
    // they leave the organization alone rather than risk exceeding it.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await queueJobs(limited.organizationId, 200);
    await queueJobs(free.organizationId, 200);
    const orgs = [limited.organizationId, free.organizationId];
    const inProgress = async () =>
      Number(
        (
          await sql<{ n: string }>`select count(*) as n from jobs
            where organization_id = ${limited.organizationId} and status = 'in_progress'`.execute(ctx.db)
        ).rows[0].n,
      );
    let maxSeen = 0;
    let freeClaimed = 0;
    await Promise.all(
      Array.from({ length: 8 }, async (_, n) => {
        const worker = workerClient(ctx, fleetKey);
        for (let round = 0; round < 15; round++) {
          const claimed = await claimOk(worker, { limit: 3, organization_ids: orgs, worker_id: `w${n}` });
          maxSeen = Math.max(maxSeen, await inProgress());
          freeClaimed += claimed.filter((c) => c.job.organization_id === free.organizationId).length;
          // Half the jobs finish at once, the others stay running a little longer.
          await completeAll(
            worker,
            claimed.filter((_, i) => (i + round) % 2 === 0),
          );
          await completeAll(
            worker,
            claimed.filter((_, i) => (i + round) % 2 === 1),
          );
        }
      }),
    );
    expect(maxSeen).toBeGreaterThan(0);
    expect(maxSeen).toBeLessThanOrEqual(5);
    expect(freeClaimed).toBeGreaterThan(100);
  }, 60_000);
});
