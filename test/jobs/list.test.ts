import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type JobListFilter, type JobListPage, jobListQuery } from '../../src/jobs/job-list-repository.js';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { dataUrl, type SeedOptions, seedJob } from '../support/job-factory.js';
import { createTenant, createTestApp, type TestContext } from '../support/test-app.js';

/** A real filesystem store that counts reads, to tell whether a list touched storage. */
class CountingStore implements ObjectStore {
  reads = 0;
  constructor(private readonly inner: ObjectStore) {}
  get baseUri() {
    return this.inner.baseUri;
  }
  put(...args: Parameters<ObjectStore['put']>) {
    return this.inner.put(...args);
  }
  uriOf(key: string) {
    return this.inner.uriOf(key);
  }
  get(...args: Parameters<ObjectStore['get']>) {
    this.reads++;
    return this.inner.get(...args);
  }
  delete(uri: string) {
    return this.inner.delete(uri);
  }
}

type Tenant = Awaited<ReturnType<typeof createTenant>>;
interface ListedJob {
  id: string;
  organization_id: string;
  status: string;
  request: unknown;
  response: unknown;
  warnings: { code: string; details?: Record<string, unknown> }[] | null;
}
interface ListBody {
  object: string;
  data: ListedJob[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
  list_metadata: { before: string | null; after: string | null };
}

let ctx: TestContext;
let store: CountingStore;
let storeDir: string;

beforeAll(async () => {
  storeDir = await mkdtemp(path.join(os.tmpdir(), 'jobs-list-store-'));
  store = new CountingStore(new FilesystemObjectStore(storeDir));
  ctx = await createTestApp({ env: { OFFLOAD_THRESHOLD_BYTES: '1024' }, store });
});
afterAll(async () => {
  await ctx.close();
  await rm(storeDir, { recursive: true, force: true });
});

const list = (tenant: Tenant, query: Record<string, string> = {}) =>
  ctx.app.inject({
    method: 'GET',
    url: `/v1/jobs?${new URLSearchParams(query)}`,
    headers: { 'api-key': tenant.key },
  });

async function listOk(tenant: Tenant, query: Record<string, string> = {}): Promise<ListBody> {
  const res = await list(tenant, query);
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

const ids = (body: ListBody) => body.data.map((j) => j.id);

/** A job whose created_at is set to `at`, so tests decide the order. */
async function seedAt(tenant: Tenant, at: Date, options: SeedOptions = {}) {
  const row = await seedJob(ctx, tenant.organizationId, options);
  await ctx.db.updateTable('jobs').set({ created_at: at }).where('id', '=', row.id).execute();
  return { id: row.id, at };
}

/** The listing order: created_at, then id for jobs created in the same instant. */
function sorted(jobs: { id: string; at: Date }[], order: 'asc' | 'desc') {
  const asc = [...jobs].sort((a, b) => a.at.getTime() - b.at.getTime() || (a.id < b.id ? -1 : 1));
  return (order === 'asc' ? asc : asc.reverse()).map((j) => j.id);
}

/** Follows list_metadata.after from the first page to the last; answers every page. */
async function walkForward(tenant: Tenant, query: Record<string, string>, between?: () => Promise<unknown>) {
  const pages: ListBody[] = [await listOk(tenant, query)];
  for (;;) {
    const cursor = pages.at(-1)?.list_metadata.after;
    if (!cursor) return pages;
    await between?.();
    pages.push(await listOk(tenant, { ...query, after: cursor }));
  }
}

const BASE = Date.UTC(2024, 0, 10, 12);
const at = (seconds: number) => new Date(BASE + seconds * 1000);

describe('GET /v1/jobs: order and pages', () => {
  let tenant: Tenant;
  let jobs: { id: string; at: Date }[];

  beforeAll(async () => {
    tenant = await createTenant(ctx.db);
    jobs = [];
    // 25 jobs, three at a time created in the same millisecond: the id breaks those ties.
    for (let i = 0; i < 25; i++) jobs.push(await seedAt(tenant, at(Math.floor(i / 3))));
  });

  it('answers the newest 20 first by default, with the list envelope', async () => {
    const body = await listOk(tenant);
    const expected = sorted(jobs, 'desc');
    expect(ids(body)).toEqual(expected.slice(0, 20));
    expect(body).toMatchObject({
      object: 'list',
      first_id: expected[0],
      last_id: expected[19],
      has_more: true,
      list_metadata: { before: null, after: expected[19] },
    });
    // Lightweight: no payload, no storage read.
    expect(body.data.every((j) => j.request === null && j.response === null)).toBe(true);
  });

  it('answers the oldest first with order=asc', async () => {
    const body = await listOk(tenant, { order: 'asc', limit: '5' });
    expect(ids(body)).toEqual(sorted(jobs, 'asc').slice(0, 5));
    expect(body.has_more).toBe(true);
  });

  it.each(['desc', 'asc'] as const)(
    'walks every job exactly once, forward with after and back with before (order=%s)',
    async (order) => {
      const expected = sorted(jobs, order);
      const forward = await walkForward(tenant, { order, limit: '7' });
      expect(forward.flatMap(ids)).toEqual(expected);
      expect(forward.map((p) => p.data.length)).toEqual([7, 7, 7, 4]);
      expect(forward.map((p) => p.has_more)).toEqual([true, true, true, false]);
      expect(forward[0].list_metadata.before).toBeNull();
      for (const page of forward.slice(1)) expect(page.list_metadata.before).toBe(page.first_id);

      // From the last page back to the first, following list_metadata.before.
      const last = forward.at(-1) as ListBody;
      const backward: ListBody[] = [last];
      for (;;) {
        const cursor = backward[0].list_metadata.before;
        if (!cursor) break;
        const page = await listOk(tenant, { order, limit: '7', before: cursor });
        expect(page.list_metadata.after).toBe(page.last_id);
        backward.unshift(page);
      }
      expect(backward.flatMap(ids)).toEqual(expected);
      expect(backward.map((p) => p.data.length)).toEqual([7, 7, 7, 4]);
      expect(backward[0].has_more).toBe(false);
      expect(backward.slice(1, -1).every((p) => p.has_more)).toBe(true);
    },
  );

  it('keeps the order of jobs created microseconds apart across page boundaries', async () => {
    const fine = await createTenant(ctx.db);
    const created: string[] = [];
    for (let i = 0; i < 6; i++) {
      const row = await seedJob(ctx, fine.organizationId);
      // Same millisecond, a JS Date could not tell them apart; descending microseconds vs insertion.
      await sql`update jobs set created_at = ${`2024-01-10T12:00:00.12345${5 - i}Z`}::timestamptz
        where id = ${row.id}`.execute(ctx.db);
      created.unshift(row.id);
    }
    for (const order of ['asc', 'desc'] as const) {
      const pages = await walkForward(fine, { order, limit: '2' });
      expect(pages.flatMap(ids)).toEqual(order === 'asc' ? created : [...created].reverse());
    }
  });

  it('answers an empty page with null ids and null cursors', async () => {
    const empty = await createTenant(ctx.db);
    expect(await listOk(empty)).toEqual({
      object: 'list',
      data: [],
      first_id: null,
      last_id: null,
      has_more: false,
      list_metadata: { before: null, after: null },
    });
    // Past the oldest job in desc order, and before the newest.
    const expected = sorted(jobs, 'desc');
    const pastEnd = await listOk(tenant, { after: expected.at(-1) as string });
    expect(pastEnd).toMatchObject({ data: [], first_id: null, last_id: null, has_more: false });
    const beforeStart = await listOk(tenant, { before: expected[0] });
    expect(beforeStart).toMatchObject({ data: [], has_more: false, list_metadata: { before: null } });
  });
});

describe('GET /v1/jobs: pagination while jobs are created', () => {
  it.each(['desc', 'asc'] as const)(
    'never repeats nor skips a job that existed at the start (order=%s)',
    async (order) => {
      const tenant = await createTenant(ctx.db);
      const initial: { id: string; at: Date }[] = [];
      for (let i = 0; i < 15; i++) initial.push(await seedAt(tenant, at(Math.floor(i / 2))));

      let step = 0;
      // Between pages: a brand-new job (now, the newest of all) and one created at the same
      // instant as existing jobs, so it lands on either side of the cursor.
      const insertSome = async () => {
        step++;
        await seedJob(ctx, tenant.organizationId);
        await seedAt(tenant, at(step % 7));
      };
      const pages: ListBody[] = [];
      let cursor: string | null | undefined;
      do {
        const query: Record<string, string> = { order, limit: '4', ...(cursor ? { after: cursor } : {}) };
        await insertSome();
        // And during the page's own query.
        const [res] = await Promise.all([list(tenant, query), insertSome()]);
        expect(res.statusCode).toBe(200);
        pages.push(res.json());
        cursor = pages.at(-1)?.list_metadata.after;
      } while (cursor);

      const seen = pages.flatMap(ids);
      expect(new Set(seen).size).toBe(seen.length);
      const initialIds = new Set(initial.map((j) => j.id));
      expect(seen.filter((id) => initialIds.has(id))).toEqual(sorted(initial, order));
    },
  );
});

describe('GET /v1/jobs: filters', () => {
  let tenant: Tenant;
  const j: Record<string, string> = {};

  beforeAll(async () => {
    tenant = await createTenant(ctx.db);
    const seed = async (name: string, iso: string, options: SeedOptions) => {
      j[name] = (await seedAt(tenant, new Date(iso), options)).id;
    };
    await seed('feb29', '2024-02-29T23:59:59.999Z', { status: 'completed' });
    await seed('mar1Start', '2024-03-01T00:00:00.000Z', { metadata: { batch: 'a', team: 'x' } });
    await seed('mar1End', '2024-03-01T23:59:59.999Z', {
      status: 'completed',
      endpoint: '/v1/documents/parse',
      metadata: { batch: 'a' },
    });
    await seed('mar2Start', '2024-03-02T00:00:00.000Z', {
      status: 'completed',
      metadata: { batch: 'a', team: 'x' },
    });
    await seed('mar2Noon', '2024-03-02T12:00:00.000Z', {
      status: 'failed',
      error: { code: 'boom', message: 'boom' },
      metadata: { batch: 'b' },
    });
    await seed('mar3Start', '2024-03-03T00:00:00.000Z', {
      status: 'completed',
      metadata: { batch: 'a', team: 'y' },
    });
  });

  const names = (body: ListBody) => body.data.map((job) => Object.keys(j).find((k) => j[k] === job.id));

  it('filters by status', async () => {
    expect(names(await listOk(tenant, { status: 'completed' }))).toEqual([
      'mar3Start',
      'mar2Start',
      'mar1End',
      'feb29',
    ]);
    expect(names(await listOk(tenant, { status: 'queued' }))).toEqual(['mar1Start']);
    expect(names(await listOk(tenant, { status: 'in_progress' }))).toEqual([]);
  });

  it.each(['/v1/documents/parse', 'documents/parse', '/documents/parse'])(
    'filters by endpoint given as %s',
    async (endpoint) => {
      expect(names(await listOk(tenant, { endpoint }))).toEqual(['mar1End']);
    },
  );

  it('filters by metadata containment, every pair exactly', async () => {
    expect(names(await listOk(tenant, { metadata: '{"batch":"a"}' }))).toEqual([
      'mar3Start',
      'mar2Start',
      'mar1End',
      'mar1Start',
    ]);
    expect(names(await listOk(tenant, { metadata: '{"batch":"a","team":"x"}' }))).toEqual([
      'mar2Start',
      'mar1Start',
    ]);
    expect(names(await listOk(tenant, { metadata: '{"batch":"A"}' }))).toEqual([]);
    // No pair asked: no filter.
    expect(await listOk(tenant, { metadata: '{}' })).toHaveProperty('data.length', 6);
  });

  it('includes both edges of from_date and to_date, in UTC', async () => {
    const day = await listOk(tenant, { from_date: '2024-03-01', to_date: '2024-03-01' });
    expect(names(day)).toEqual(['mar1End', 'mar1Start']);
    expect(names(await listOk(tenant, { from_date: '2024-03-02' }))).toEqual([
      'mar3Start',
      'mar2Noon',
      'mar2Start',
    ]);
    expect(names(await listOk(tenant, { to_date: '2024-02-29' }))).toEqual(['feb29']);
    expect(names(await listOk(tenant, { from_date: '2024-03-04' }))).toEqual([]);
  });

  it('combines status, endpoint, metadata and dates, and pages through the result', async () => {
    const query = {
      status: 'completed',
      endpoint: 'documents/extract',
      metadata: '{"batch":"a"}',
      from_date: '2024-03-01',
      to_date: '2024-03-03',
    };
    expect(names(await listOk(tenant, query))).toEqual(['mar3Start', 'mar2Start']);
    const pages = await walkForward(tenant, { ...query, limit: '1', order: 'asc' });
    expect(pages.map(names)).toEqual([['mar2Start'], ['mar3Start']]);
    expect(pages.map((p) => p.has_more)).toEqual([true, false]);
  });
});

describe('GET /v1/jobs: include_request and include_response', () => {
  it('restores each job, with a warning only on the job whose artifact is broken', async () => {
    const tenant = await createTenant(ctx.db);
    const requests = [1, 2, 3].map((n) => ({
      document: { filename: `${n}.pdf`, url: dataUrl(3000, 'application/pdf', n).url },
    }));
    const response = { status_code: 200, body: { image: dataUrl(4000, 'image/png', 9).url } };
    const seeded = [];
    for (const [i, request] of requests.entries()) {
      seeded.push(
        await seedAt(tenant, at(i), i === 2 ? { request, status: 'completed', response } : { request }),
      );
    }
    const broken = seeded[1].id;
    const [artifact] = await ctx.db
      .selectFrom('job_artifacts')
      .select('storage_uri')
      .where('job_id', '=', broken)
      .execute();
    await ctx.store.delete(artifact.storage_uri);

    const readsBefore = store.reads;
    const light = await listOk(tenant, { order: 'asc' });
    expect(store.reads).toBe(readsBefore);
    expect(light.data.map((job) => [job.request, job.response, job.warnings])).toEqual([
      [null, null, null],
      [null, null, null],
      [null, null, null],
    ]);

    const full = await listOk(tenant, { order: 'asc', include_request: 'true', include_response: '1' });
    expect(full.data.map((job) => job.id)).toEqual(seeded.map((s) => s.id));
    expect(full.data[0]).toMatchObject({ request: requests[0], response: null, warnings: null });
    expect(full.data[1].request).toEqual({ document: { filename: '2.pdf', url: null } });
    expect(full.data[1].warnings).toEqual([
      expect.objectContaining({
        code: 'artifact_restore_failed',
        details: expect.objectContaining({ pointer: '/document/url', reason: 'not_found', role: 'request' }),
      }),
    ]);
    expect(full.data[2]).toMatchObject({ request: requests[2], response, warnings: null });

    const onlyResponse = await listOk(tenant, { order: 'asc', include_response: 'true' });
    expect(onlyResponse.data.map((job) => [job.request, job.response])).toEqual([
      [null, null],
      [null, null],
      [null, response],
    ]);
  });
});

describe('GET /v1/jobs: organizations', () => {
  it("never lists another organization's jobs, nor accepts them as cursors", async () => {
    const mine = await createTenant(ctx.db);
    const theirs = await createTenant(ctx.db);
    const own = [await seedAt(mine, at(1)), await seedAt(mine, at(3))];
    const other = [await seedAt(theirs, at(2)), await seedAt(theirs, at(4))];

    const body = await listOk(mine);
    expect(ids(body)).toEqual(sorted(own, 'desc'));
    expect(body.data.every((job) => job.organization_id === mine.organizationId)).toBe(true);
    expect(ids(await listOk(theirs))).toEqual(sorted(other, 'desc'));

    // Someone else's job and a job that does not exist answer alike.
    const unknown = 'job_V1StGXR8_Z5jdHi6B-myT';
    for (const side of ['after', 'before']) {
      for (const id of [other[0].id, unknown]) {
        const res = await list(mine, { [side]: id });
        expect(res.statusCode).toBe(400);
        expect(res.json()).toEqual({
          detail: {
            code: 'invalid_request',
            message: `Invalid query parameter '${side}': '${id}' is not the id of one of your jobs.`,
            details: { location: 'querystring', field: side },
          },
        });
      }
    }
  });
});

describe('GET /v1/jobs: invalid queries', () => {
  let tenant: Tenant;
  let jobId: string;
  beforeAll(async () => {
    tenant = await createTenant(ctx.db);
    jobId = (await seedJob(ctx, tenant.organizationId)).id;
  });

  it.each<[string, Record<string, string>, string]>([
    ['limit 0', { limit: '0' }, 'limit'],
    ['limit 101', { limit: '101' }, 'limit'],
    ['a limit that is not a number', { limit: 'ten' }, 'limit'],
    ['limit 50 with include_response', { limit: '50', include_response: 'true' }, 'limit'],
    ['an unknown order', { order: 'newest' }, 'order'],
    ['a malformed after', { after: 'not-a-job' }, 'after'],
    ['a malformed before', { before: 'job_short' }, 'before'],
    ['an unknown cursor', { after: 'job_V1StGXR8_Z5jdHi6B-myT' }, 'after'],
    ['metadata that is not JSON', { metadata: '{batch:a}' }, 'metadata'],
    ['metadata that is an array', { metadata: '["a"]' }, 'metadata'],
    ['metadata that is a string', { metadata: '"a"' }, 'metadata'],
    ['metadata that is null', { metadata: 'null' }, 'metadata'],
    ['metadata with a number value', { metadata: '{"batch":1}' }, 'metadata'],
    ['metadata with an object value', { metadata: '{"batch":{"id":"a"}}' }, 'metadata'],
    ['metadata with a null value', { metadata: '{"batch":null}' }, 'metadata'],
    ['a from_date in another format', { from_date: '2024/03/01' }, 'from_date'],
    ['a from_date with a time', { from_date: '2024-03-01T00:00:00Z' }, 'from_date'],
    ['a from_date that is not a day', { from_date: '2024-02-30' }, 'from_date'],
    ['a to_date with month 13', { to_date: '2024-13-01' }, 'to_date'],
    ['a from_date after the to_date', { from_date: '2024-03-02', to_date: '2024-03-01' }, 'from_date'],
    ['an unknown status', { status: 'done' }, 'status'],
    ['an unknown endpoint', { endpoint: '/v1/documents/unknown' }, 'endpoint'],
    ['a bad include_request', { include_request: 'yes' }, 'include_request'],
  ])('answers 400 naming the parameter for %s', async (_name, query, field) => {
    const res = await list(tenant, query);
    expect(res.statusCode).toBe(400);
    const { detail } = res.json();
    expect(detail).toMatchObject({ code: 'invalid_request', details: { location: 'querystring', field } });
    expect(detail.message).toContain(`'${field}'`);
  });

  it('answers 400 when both cursors are given', async () => {
    const res = await list(tenant, { after: jobId, before: jobId });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toMatchObject({
      message: "Invalid query parameter 'before': cannot be combined with 'after'; pass one cursor.",
      details: { field: 'before' },
    });
  });

  it('accepts limit 20 with include_response and 100 without', async () => {
    expect((await list(tenant, { limit: '20', include_response: 'true' })).statusCode).toBe(200);
    expect((await list(tenant, { limit: '100' })).statusCode).toBe(200);
  });
});

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}
const planNodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(planNodes)];

describe('list query plans', () => {
  let organizationId: string;
  let cursorId: string;

  // A realistic share of one organization, analysed, so the plans are those of a real table;
  // seq scans are switched off in the session so that cheap small-table scans cannot win.
  beforeAll(async () => {
    organizationId = (await createTenant(ctx.db)).organizationId;
    await sql`
      insert into jobs (id, organization_id, status, endpoint, metadata, created_at, updated_at, expires_at, run_after)
      select 'job_plan' || lpad(g::text, 17, '0'), ${organizationId},
        (array['queued', 'in_progress', 'completed', 'failed', 'cancelled'])[1 + g % 5],
        (array['/v1/documents/extract', '/v1/documents/parse', '/v1/documents/split'])[1 + g % 3],
        case when g % 10 = 0 then jsonb_build_object('batch', 'b' || (g % 100)) end,
        timestamptz '2024-06-01' - make_interval(secs => g * 60), now(), now(), now()
      from generate_series(1, 20000) g`.execute(ctx.db);
    await sql`update jobs set metadata = '{"batch": "rare"}' where id = 'job_plan00000000000012345'`.execute(
      ctx.db,
    );
    await sql`analyze jobs`.execute(ctx.db);
    cursorId = 'job_plan00000000000005000';
  });

  const dates = {
    createdFrom: new Date('2024-05-20T00:00:00Z'),
    createdUntil: new Date('2024-05-25T00:00:00Z'),
  };
  it.each<[string, Partial<JobListFilter>, string[]]>([
    ['no filter', {}, ['jobs_org_created_idx']],
    ['status', { status: 'failed' }, ['jobs_org_status_created_idx']],
    ['endpoint', { endpoint: '/v1/documents/parse' }, ['jobs_org_endpoint_created_idx']],
    ['dates', dates, ['jobs_org_created_idx']],
    ['a common metadata pair', { metadata: { batch: 'b10' } }, ['jobs_org_created_idx', 'jobs_metadata_idx']],
    ['a rare metadata pair', { metadata: { batch: 'rare' } }, ['jobs_metadata_idx']],
    [
      'status, endpoint and metadata',
      { status: 'failed', endpoint: '/v1/documents/parse', metadata: { batch: 'b10' } },
      ['jobs_org_status_created_idx', 'jobs_org_endpoint_created_idx', 'jobs_metadata_idx'],
    ],
    [
      'status, endpoint, metadata and dates',
      { status: 'failed', endpoint: '/v1/documents/parse', metadata: { batch: 'b10' }, ...dates },
      ['jobs_org_status_created_idx', 'jobs_org_endpoint_created_idx', 'jobs_metadata_idx'],
    ],
  ])('filtering by %s reads jobs through an index', async (_name, filter, indexes) => {
    for (const cursor of [undefined, { id: cursorId, side: 'after' as const }]) {
      for (const order of ['desc', 'asc'] as const) {
        const page: JobListPage = { order, limit: 20, cursor, include: { request: false, response: false } };
        const compiled = jobListQuery(ctx.db, { organizationId, ...filter }, page).compile();
        const plan = await ctx.db.connection().execute(async (conn) => {
          await sql`set enable_seqscan = off`.execute(conn);
          try {
            const explained = await conn.executeQuery<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>({
              ...compiled,
              sql: `explain (format json) ${compiled.sql}`,
            });
            return explained.rows[0]['QUERY PLAN'][0].Plan;
          } finally {
            await sql`reset enable_seqscan`.execute(conn);
          }
        });
        const nodes = planNodes(plan);
        expect(nodes.map((n) => n['Node Type'])).not.toContain('Seq Scan');
        const used = nodes.map((n) => n['Index Name']).filter((name) => name && name !== 'jobs_pkey');
        expect(used.length, JSON.stringify(plan)).toBeGreaterThan(0);
        for (const name of used) expect(indexes, JSON.stringify(plan)).toContain(name);
      }
    }
  });
});
