import { beforeAll, describe, expect, it } from 'vitest';
import { createStatusRereader } from '../../src/jobs/status-rereads.js';
import { seedJob } from '../support/job-factory.js';
import { createTenant, useTestApp } from '../support/test-app.js';

const ctx = useTestApp();
let tenant: Awaited<ReturnType<typeof createTenant>>;

beforeAll(async () => {
  tenant = await createTenant(ctx.db);
});

describe('createStatusRereader', () => {
  it('answers reads asked for in one tick from one statement, each with its own row', async () => {
    const jobs = await Promise.all(Array.from({ length: 5 }, () => seedJob(ctx, tenant.organizationId)));
    let statements = 0;
    const counting = ctx.db.withPlugin({
      transformQuery: (args) => {
        statements++;
        return args.node;
      },
      transformResult: async (args) => args.result,
    });
    const reread = createStatusRereader(counting);
    const rows = await Promise.all(jobs.map((j) => reread(tenant.organizationId, j.id)));
    expect(rows.map((r) => r?.id)).toEqual(jobs.map((j) => j.id));
    expect(statements).toBe(1);
  });

  it("reads another organization's job and a missing one as missing", async () => {
    const other = await createTenant(ctx.db);
    const job = await seedJob(ctx, tenant.organizationId);
    const reread = createStatusRereader(ctx.db);
    const [foreign, missing, own] = await Promise.all([
      reread(other.organizationId, job.id),
      reread(tenant.organizationId, 'job_AAAAAAAAAAAAAAAAAAAAA'),
      reread(tenant.organizationId, job.id),
    ]);
    expect(foreign).toBeUndefined();
    expect(missing).toBeUndefined();
    expect(own?.status).toBe('queued');
  });

  it('splits a large burst into statements of at most 500 ids', async () => {
    const ids = Array.from({ length: 1200 }, (_, i) => `job_${String(i).padStart(21, '0')}`);
    let statements = 0;
    const counting = ctx.db.withPlugin({
      transformQuery: (args) => {
        statements++;
        return args.node;
      },
      transformResult: async (args) => args.result,
    });
    const reread = createStatusRereader(counting);
    const rows = await Promise.all(ids.map((id) => reread(tenant.organizationId, id)));
    expect(rows.every((r) => r === undefined)).toBe(true);
    expect(statements).toBe(3);
  });
});
