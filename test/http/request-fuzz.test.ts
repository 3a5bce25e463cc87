import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { JobStatus } from '../../src/domain/job-statuses.js';
import { createLogger } from '../../src/logger.js';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import {
  clientRequest,
  type InjectRequest,
  isSlot,
  type KeyName,
  type RequestSpec,
  type SlotValue,
  slotsOf,
  toInjectRequest,
  wildRequest,
  workerRequest,
} from '../support/fuzz-requests.js';
import { seedJob } from '../support/job-factory.js';
import { addKey, createTenant, useTestApp } from '../support/test-app.js';

/**
 * Generated requests to every route (test/support/fuzz-requests.ts says what is generated). For
 * each one: never a 5xx; every 4xx in the one error shape, as JSON, with an x-request-id; and a
 * refused request changes no row and no stored object.
 *
 * The server's own logger runs at info, and what a request logs is checked too: no line at level
 * error, and never an API key of the fixture.
 *
 * FUZZ_RUNS sets the requests per property (default 800, three properties: 7-10 s for the file
 * alone, 12-17 s within `npm test` on 2 cores); FUZZ_SEED fixes the seed and FUZZ_PATH replays one
 * counterexample (fast-check prints both on a failure). Without FUZZ_SEED every run draws a new
 * seed, so each run of the suite tries other requests. FUZZ_STATS=1 prints which route answered
 * which status how often: what the generators reach.
 */
const RUNS = Number(process.env.FUZZ_RUNS || 800);
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const PATH = process.env.FUZZ_PATH;
// Requests slow down as the tables and the store fill up: long runs (FUZZ_RUNS=5000) get more time.
const TIMEOUT_MS = 60_000 + RUNS * 200;
const fuzzOptions = {
  numRuns: RUNS,
  ...(SEED === undefined ? {} : { seed: SEED }),
  ...(PATH ? { path: PATH } : {}),
};

// Small limits, so that the paths behind them run with small generated bodies: a 413 at 64 KiB,
// data URLs offloaded from 256 bytes on, whole documents stored as objects past 4 KiB.
const FUZZ_ENV = {
  BODY_LIMIT_BYTES: '65536',
  OFFLOAD_THRESHOLD_BYTES: '256',
  INLINE_DOCUMENT_LIMIT_BYTES: '4096',
  LEASE_SECONDS: '30',
  MAX_LEASE_SECONDS: '600',
};

// The store's folder is this test's own, so its files can be listed before and after a request.
const storeDir = mkdtempSync(path.join(os.tmpdir(), 'jobs-fuzz-store-'));

// The server's own logger at info, as in production: every request runs through the request log's
// serializers and redaction. Its lines are kept until the request they belong to is checked.
const logLines: string[] = [];
const logSink = new Writable({
  write(chunk, _encoding, done) {
    logLines.push(chunk.toString());
    done();
  },
});
const ctx = useTestApp({
  env: FUZZ_ENV,
  store: new FilesystemObjectStore(storeDir),
  logger: createLogger({ level: 'info', destination: logSink }),
});
afterAll(async () => {
  await rm(storeDir, { recursive: true, force: true });
});

const keys = {} as Record<KeyName, string>;
let orgA: string;
let orgB: string;

beforeAll(async () => {
  const a = await createTenant(ctx.db, 'client');
  orgA = a.organizationId;
  keys.client = a.key;
  keys.worker = (await addKey(ctx.db, orgA, 'worker')).key;
  keys.admin = (await addKey(ctx.db, orgA, 'admin')).key;
  const revoked = await addKey(ctx.db, orgA, 'client');
  await ctx.db
    .updateTable('api_keys')
    .set({ revoked_at: new Date() })
    .where('id', '=', revoked.keyId)
    .execute();
  keys.revoked = revoked.key;
  const b = await createTenant(ctx.db, 'client');
  orgB = b.organizationId;
  keys.other_client = b.key;
  keys.other_worker = (await addKey(ctx.db, orgB, 'worker')).key;
});

// ---------------------------------------------------------------------------------------------
// Fixtures: the jobs and leases the slots of a request name, made on demand. Valid requests move
// jobs on (a claim leases them, a report ends the lease), so each slot is looked up right before
// its request, and a job in the wanted state is made when none is left.

const FALLBACK_TOKEN = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';

async function ids(
  organizationId: string,
  status: JobStatus,
  cancelled: boolean | undefined = undefined,
): Promise<string[]> {
  let query = ctx.db
    .selectFrom('jobs')
    .select('id')
    .where('organization_id', '=', organizationId)
    .where('status', '=', status);
  if (cancelled !== undefined) query = query.where('cancelled', '=', cancelled);
  const rows = await query.orderBy('created_at').orderBy('id').execute();
  return rows.map((r) => r.id);
}

async function post(url: string, key: string, payload?: Record<string, unknown>) {
  const res = await ctx.app.inject({ method: 'POST', url, headers: { 'api-key': key }, payload });
  if (res.statusCode !== 200) throw new Error(`fixture ${url} answered ${res.statusCode}: ${res.body}`);
  return res.json();
}

/** Leases a job of the organization: one seeded an hour back, so it is the oldest runnable. */
async function claimOne(organizationId: string, workerKey: string): Promise<string> {
  await seedJob(ctx, organizationId, { at: new Date(Date.now() - 3_600_000) });
  const claimed = await post('/v1/worker/claim', workerKey, { worker_id: 'fixture-worker', limit: 1 });
  return claimed.data[0].job.id;
}

const SEEDED: Partial<Record<JobStatus, Parameters<typeof seedJob>[2]>> = {
  queued: {},
  validating: { status: 'validating' },
  // A response with a data URL past the offload threshold: its object is restored on read.
  completed: {
    status: 'completed',
    response: { status_code: 200, body: { text: 'x', file: `data:text/plain;base64,${'QUFB'.repeat(100)}` } },
  },
  failed: { status: 'failed', error: { code: 'boom', message: 'it broke' } },
  cancelled: { status: 'cancelled' },
  expired: { status: 'expired' },
};

async function jobInState(name: string, pick: number): Promise<string> {
  const choose = (found: string[]) => found[pick % found.length];
  switch (name) {
    case 'running': {
      const found = await ids(orgA, 'in_progress', false);
      return found.length ? choose(found) : claimOne(orgA, keys.worker);
    }
    case 'cancelling': {
      const found = await ids(orgA, 'in_progress', true);
      if (found.length) return choose(found);
      const id = await claimOne(orgA, keys.worker);
      await post(`/v1/jobs/${id}/cancel`, keys.client);
      return id;
    }
    case 'other_org': {
      const found = await ids(orgB, 'queued');
      return found.length ? choose(found) : (await seedJob(ctx, orgB)).id;
    }
    case 'other_org_running': {
      const found = await ids(orgB, 'in_progress');
      return found.length ? choose(found) : claimOne(orgB, keys.other_worker);
    }
    default: {
      const status = name as JobStatus;
      const found = await ids(orgA, status);
      return found.length ? choose(found) : (await seedJob(ctx, orgA, SEEDED[status])).id;
    }
  }
}

async function currentLease(where: { organizationId: string; not?: string }): Promise<string | undefined> {
  let query = ctx.db
    .selectFrom('jobs')
    .select('lease_token')
    .where('organization_id', '=', where.organizationId)
    .where('status', '=', 'in_progress')
    .where('lease_token', 'is not', null);
  if (where.not) query = query.where('id', '!=', where.not);
  return (await query.orderBy('id').executeTakeFirst())?.lease_token ?? undefined;
}

async function leaseOf(name: string, pathJob: string | undefined): Promise<string> {
  switch (name) {
    case 'own':
    case 'own_upper': {
      let token: string | undefined;
      if (pathJob) {
        const job = await ctx.db
          .selectFrom('jobs')
          .select('lease_token')
          .where('id', '=', pathJob)
          .executeTakeFirst();
        token = job?.lease_token ?? undefined;
        // A job whose lease ended: the token of its last attempt (a stale worker, or a resend).
        token ??= (
          await ctx.db
            .selectFrom('job_attempts')
            .select('lease_token')
            .where('job_id', '=', pathJob)
            .orderBy('attempt', 'desc')
            .executeTakeFirst()
        )?.lease_token;
      }
      token ??= FALLBACK_TOKEN;
      return name === 'own_upper' ? token.toUpperCase() : token;
    }
    case 'other_running': {
      const token = await currentLease({ organizationId: orgA, not: pathJob });
      if (token) return token;
      await claimOne(orgA, keys.worker);
      return (await currentLease({ organizationId: orgA, not: pathJob })) ?? FALLBACK_TOKEN;
    }
    case 'other_org': {
      const token = await currentLease({ organizationId: orgB });
      if (token) return token;
      await claimOne(orgB, keys.other_worker);
      return (await currentLease({ organizationId: orgB })) ?? FALLBACK_TOKEN;
    }
    default: {
      const ended = await ctx.db
        .selectFrom('job_attempts')
        .innerJoin('jobs', 'jobs.id', 'job_attempts.job_id')
        .select('job_attempts.lease_token')
        .where('jobs.organization_id', '=', orgA)
        .where('job_attempts.outcome', 'is not', null)
        .orderBy('job_attempts.lease_token')
        .executeTakeFirst();
      if (ended) return ended.lease_token;
      const id = await claimOne(orgA, keys.worker);
      const token = (await leaseOf('own', id)) as string;
      await post(`/v1/worker/jobs/${id}/release`, keys.worker, { lease_token: token });
      return token;
    }
  }
}

/** Resolves every slot of the request: the path's job first, since `own` leases are its lease. */
async function resolveSlots(spec: RequestSpec) {
  const values = new Map<SlotValue, string>();
  const pathSlots = spec.path.filter(isSlot);
  const others = [
    ...spec.query.map((q) => q.value).filter(isSlot),
    ...(spec.body.kind === 'json' ? slotsOf(spec.body.value) : []),
  ];
  for (const slot of [...pathSlots, ...others.filter((s) => s.ref.slot === 'job')]) {
    values.set(slot, await jobInState(slot.ref.name, slot.ref.pick));
  }
  const pathJob = pathSlots.length ? values.get(pathSlots[0]) : undefined;
  for (const slot of others.filter((s) => s.ref.slot === 'lease')) {
    values.set(slot, await leaseOf(slot.ref.name, pathJob));
  }
  return {
    slot: (slot: SlotValue) => {
      const value = values.get(slot);
      if (value === undefined) throw new Error(`unresolved slot ${slot.ref.slot}:${slot.ref.name}`);
      return value;
    },
    key: (name: KeyName) => keys[name],
    // A status wait returns at once for a terminal job and for one that is not the caller's.
    waitAnswersAtOnce:
      spec.path.some((p) => typeof p === 'string' && p.includes('/status')) &&
      pathSlots.length === 1 &&
      !['queued', 'running', 'cancelling', 'validating'].includes(pathSlots[0].ref.name),
  };
}

// ---------------------------------------------------------------------------------------------
// State: every row version of the tables a request could change, and every file of the store.
//
// Compared around every request, not per batch: valid requests (2xx) change state on purpose, and
// they come mixed with the refused ones, so only a snapshot right before and right after a refused
// request can tell what it did, and a failure then names the very request.
//
// A row is identified by its version, (ctid, xmin), not by its content: PostgreSQL writes a new
// version for every INSERT, UPDATE (even one that writes the same values) and DELETE, and keeps it
// for a row lock (FOR UPDATE of a transaction that then refuses), so this sees every write, and
// reads no payload: the JSON columns grow with every valid create and completion.

const TABLES = [
  'organizations',
  'api_keys',
  'jobs',
  'job_attempts',
  'job_artifacts',
  'storage_deletions',
] as const;

const stateQuery = sql.join(
  TABLES.map(
    (table) =>
      sql`select ${table}::text as name, count(*)::int as rows,
        md5(coalesce(string_agg(t.ctid::text || t.xmin::text, ',' order by t.ctid), '')) as hash
      from ${sql.table(table)} t`,
  ),
  sql` union all `,
);

interface State {
  tables: Record<string, string>;
  files: string[];
}

async function snapshot(): Promise<State> {
  const { rows } = await sql<{ name: string; rows: number; hash: string }>`${stateQuery}`.execute(ctx.db);
  const tables = Object.fromEntries(rows.map((r) => [r.name, `${r.rows} rows, md5 ${r.hash}`]));
  // Files only: a discarded write may leave its empty folders behind, and they hold no object.
  // Synchronous on purpose: the store grows into hundreds of small folders, and one thread-pool
  // round trip per folder made the listing most of the test's time.
  const files = readdirSync(storeDir, { recursive: true, withFileTypes: true })
    .filter((entry) => !entry.isDirectory())
    .map((entry) => {
      const file = path.join(entry.parentPath, entry.name);
      const info = statSync(file);
      return `${path.relative(storeDir, file)} ${info.size} ${info.mtimeMs}`;
    });
  return { tables, files: files.sort() };
}

function stateChanges(before: State, after: State): string[] {
  const changes: string[] = [];
  for (const [table, was] of Object.entries(before.tables)) {
    if (after.tables[table] !== was) changes.push(`${table}: ${was} -> ${after.tables[table]}`);
  }
  const added = after.files.filter((f) => !before.files.includes(f));
  const removed = before.files.filter((f) => !after.files.includes(f));
  if (added.length) changes.push(`files added or rewritten: ${added.join(', ')}`);
  if (removed.length) changes.push(`files removed or rewritten: ${removed.join(', ')}`);
  return changes;
}

// ---------------------------------------------------------------------------------------------
// The property

const clip = (text: string, max = 600) =>
  text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;

function describeExchange(request: InjectRequest, res: LightMyRequestResponse): string {
  const payload = request.payload === undefined ? '' : `\n  body: ${clip(request.payload.toString())}`;
  return [
    `${request.method} ${clip(request.url, 300)}`,
    `  headers: ${clip(JSON.stringify(request.headers), 400)}${payload}`,
    `answered ${res.statusCode} ${clip(JSON.stringify(res.headers), 400)}`,
    `  ${clip(res.body)}`,
  ].join('\n');
}

function errorShapeProblem(res: LightMyRequestResponse, method: string): string | undefined {
  if (!res.headers['x-request-id']) return 'no x-request-id header';
  const type = String(res.headers['content-type'] ?? '');
  if (!/^application\/json(;|$)/.test(type)) return `content type '${type}' is not JSON`;
  // A HEAD answer has the headers of the GET one and no body.
  if (method === 'HEAD') return undefined;
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    return 'the body is not JSON';
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(body) || Object.keys(body).join() !== 'detail' || !isObject(body.detail)) {
    return 'the body is not {"detail": {...}}';
  }
  const { code, message, details, ...rest } = body.detail;
  if (typeof code !== 'string' || typeof message !== 'string') return 'code or message is not a string';
  if (details !== undefined && !isObject(details)) return 'details is not an object';
  if (Object.keys(rest).length) return `unexpected fields in detail: ${Object.keys(rest).join(', ')}`;
  return undefined;
}

/** FUZZ_STATS=1 prints how often each route answered each status: what the generators reach. */
const stats = new Map<string, number>();
afterAll(() => {
  if (!process.env.FUZZ_STATS) return;
  const lines = [...stats]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, n]) => `${String(n).padStart(5)}  ${k}`);
  console.log(lines.join('\n'));
});

/** What the request logged: nothing at level error or above, and never a key of the fixture. */
function logProblem(lines: readonly string[]): string | undefined {
  for (const line of lines) {
    if ((JSON.parse(line) as { level: number }).level >= 50) return `logged an error: ${clip(line, 1500)}`;
    const leaked = Object.entries(keys).find(([, key]) => line.includes(key));
    if (leaked) return `logged the ${leaked[0]} key: ${clip(line, 1500)}`;
  }
  return undefined;
}

async function sendAndCheck(spec: RequestSpec): Promise<void> {
  const request = toInjectRequest(spec, await resolveSlots(spec));
  const before = await snapshot();
  logLines.length = 0;
  const res = await ctx.app.inject(request);
  // The response line is logged once the answer is sent: give it a turn to arrive.
  await nextTurn();
  if (process.env.FUZZ_STATS) {
    const route = spec.path.map((p) => (isSlot(p) || p.startsWith('job_') ? ':id' : p)).join('');
    const key = `${request.method} ${route.length > 40 ? `${route.slice(0, 40)}…` : route} ${res.statusCode}`;
    stats.set(key, (stats.get(key) ?? 0) + 1);
  }
  const fail = (why: string) => {
    throw new Error(`${why}\n${describeExchange(request, res)}`);
  };
  if (res.statusCode >= 500) fail(`a ${res.statusCode}`);
  if (!res.headers['x-request-id']) fail('no x-request-id header');
  const logged = logProblem(logLines);
  if (logged) fail(logged);
  if (res.statusCode < 400) return;
  const shape = errorShapeProblem(res, request.method);
  if (shape) fail(`a ${res.statusCode} not in the error shape: ${shape}`);
  const changes = stateChanges(before, await snapshot());
  if (changes.length) fail(`a refused request changed state:\n  ${changes.join('\n  ')}`);
}

describe('generated requests', () => {
  it('to the client routes: no 5xx, errors in one shape, refusals change nothing', {
    timeout: TIMEOUT_MS,
  }, async () => {
    await fc.assert(fc.asyncProperty(clientRequest, sendAndCheck), fuzzOptions);
  });

  it('to the worker routes: no 5xx, errors in one shape, refusals change nothing', {
    timeout: TIMEOUT_MS,
  }, async () => {
    await fc.assert(fc.asyncProperty(workerRequest, sendAndCheck), fuzzOptions);
  });

  it('of any shape: no 5xx, errors in one shape, refusals change nothing', {
    timeout: TIMEOUT_MS,
  }, async () => {
    await fc.assert(fc.asyncProperty(wildRequest, sendAndCheck), fuzzOptions);
  });
});
