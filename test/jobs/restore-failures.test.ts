import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import { GcsObjectStore } from '../../src/storage/gcs-store.js';
import { type FakeGcsServer, type FaultAction, startFakeGcsServer } from '../support/fake-gcs-server.js';
import { HangingReadsStore } from '../support/hanging-reads-store.js';
import { dataUrl, seedJob } from '../support/job-factory.js';
import { createTenant, createTestApp, type TestContext } from '../support/test-app.js';

// GET /v1/jobs/{id} with include_request / include_response when object storage misbehaves, on
// both backends: every broken artifact is null in the answer and has exactly one warning, the
// rest is restored byte-for-byte, and the answer is always a 200.

type Reason = 'not_found' | 'storage_error' | 'timeout' | 'size_mismatch' | 'checksum_mismatch';
type Role = 'request' | 'response';

/**
 * Long enough for a healthy read on a loaded machine (a healthy value that times out would make
 * these tests flaky), short enough that the timeout cases stay cheap.
 */
const RESTORE_TIMEOUT_MS = 500;
/** How long a stalled read would take; the answer must come long before. */
const STALL_MS = 10_000;
const ENV = {
  OFFLOAD_THRESHOLD_BYTES: '1024',
  // Small documents stay inline after their data URLs are offloaded; a 5 KB field makes one go whole.
  INLINE_DOCUMENT_LIMIT_BYTES: '4096',
  RESTORE_TIMEOUT_MS: String(RESTORE_TIMEOUT_MS),
};

/** One way of breaking a stored object, and the reason the restore must give for it. */
interface Breakage {
  label: string;
  reason: Reason;
  apply(uri: string): Promise<void>;
}

interface Backend {
  ctx: TestContext;
  key: string;
  organizationId: string;
}

interface BackendSpec {
  name: string;
  setup(): Promise<TestContext>;
  breakages: Breakage[];
  /** Undoes what the breakages left behind that could outlive a test (faults, blocked readers). */
  repair(): void;
}

let gcs: FakeGcsServer;
const gcsFault = (action: FaultAction) => async (uri: string) => {
  gcs.faults.add({ ...action, op: 'get', name: objectName(uri) });
};

const GCS: BackendSpec = {
  name: 'GCS',
  setup: () =>
    createTestApp({
      env: ENV,
      store: new GcsObjectStore({
        bucket: 'jobs',
        prefix: 'artifacts',
        apiEndpoint: gcs.url,
        projectId: 'test',
        maxRetries: 0,
      }),
    }),
  breakages: [
    { label: 'a 404 answer', reason: 'not_found', apply: gcsFault({ type: 'status', status: 404 }) },
    {
      label: 'a deleted object',
      reason: 'not_found',
      apply: async (uri) => {
        gcs.objects.delete('jobs', objectName(uri));
      },
    },
    { label: 'a 500 answer', reason: 'storage_error', apply: gcsFault({ type: 'status', status: 500 }) },
    { label: 'a 503 answer', reason: 'storage_error', apply: gcsFault({ type: 'status', status: 503 }) },
    { label: 'an answer that stalls', reason: 'timeout', apply: gcsFault({ type: 'delay', ms: STALL_MS }) },
    { label: 'corrupted bytes', reason: 'checksum_mismatch', apply: gcsFault({ type: 'corrupt' }) },
    {
      label: 'a truncated answer',
      reason: 'size_mismatch',
      apply: gcsFault({ type: 'truncate', bytes: 100 }),
    },
  ],
  repair: () => gcs.faults.clear(),
};

const fifos: string[] = [];

let hangingReads: HangingReadsStore;

const FILESYSTEM: BackendSpec = {
  name: 'the filesystem',
  setup: async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'restore-failures-'));
    hangingReads = new HangingReadsStore(new FilesystemObjectStore(dir));
    const ctx = await createTestApp({ env: ENV, store: hangingReads });
    return {
      ...ctx,
      async close() {
        await ctx.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  breakages: [
    { label: 'a deleted file', reason: 'not_found', apply: (uri) => rm(fileURLToPath(uri)) },
    {
      label: 'a directory in place of the file',
      reason: 'storage_error',
      apply: async (uri) => {
        await rm(fileURLToPath(uri));
        await mkdir(fileURLToPath(uri));
      },
    },
    {
      label: 'a read that never answers',
      reason: 'timeout',
      apply: async (uri) => hangingReads.hang(uri),
    },
    {
      label: 'a FIFO nothing writes to',
      reason: 'storage_error',
      apply: async (uri) => {
        await rm(fileURLToPath(uri));
        execFileSync('mkfifo', [fileURLToPath(uri)]);
        fifos.push(fileURLToPath(uri));
      },
    },
    {
      label: 'same-length different bytes',
      reason: 'checksum_mismatch',
      apply: async (uri) => {
        const bytes = await readFile(fileURLToPath(uri));
        bytes[bytes.length >> 1] ^= 0xff;
        await writeFile(fileURLToPath(uri), bytes);
      },
    },
    { label: 'a truncated file', reason: 'size_mismatch', apply: (uri) => truncate(fileURLToPath(uri), 100) },
  ],
  repair: () => {
    hangingReads.release();
    for (const fifo of fifos.splice(0)) releaseReaders(fifo);
  },
};

/**
 * The store opens a FIFO without blocking and refuses it; were a read ever blocked in open() on a
 * libuv thread, opening and closing a writer end would let it finish, so no thread stays stuck.
 */
function releaseReaders(fifo: string): void {
  try {
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch (error) {
    // ENXIO: nobody has it open for reading, so nobody is blocked.
    if ((error as NodeJS.ErrnoException).code !== 'ENXIO') throw error;
  }
}

function objectName(uri: string): string {
  return uri.slice('gs://jobs/'.length);
}

const MIMES = ['application/pdf', 'image/png', 'image/jpeg', 'text/plain', 'application/octet-stream'];
let seed = 1;

/** A request with `count` offloadable data URLs at /documents/<i>/url, each of its own bytes and type. */
function documentsRequest(count: number) {
  return {
    documents: Array.from({ length: count }, (_, i) => ({
      filename: `doc-${i}`,
      url: dataUrl(1500 + 37 * i, MIMES[i % MIMES.length], seed++).url,
    })),
    model: 'retab-small',
  };
}

/** A completed job's response with `count` offloadable images at /body/pages/<i>/image. */
function pagesResponse(count: number) {
  return {
    status_code: 200,
    body: {
      pages: Array.from({ length: count }, (_, i) => ({
        text: `page ${i}`,
        image: dataUrl(1300 + 41 * i, 'image/png', seed++).url,
      })),
    },
  };
}

/** Storage URI of each artifact of a job, by `<role> <pointer>`. */
async function artifactUris(ctx: TestContext, jobId: string): Promise<Map<string, string>> {
  const rows = await ctx.db
    .selectFrom('job_artifacts')
    .select(['role', 'pointer', 'storage_uri'])
    .where('job_id', '=', jobId)
    .execute();
  return new Map(rows.map((r) => [`${r.role} ${r.pointer}`, r.storage_uri]));
}

function uriOf(uris: Map<string, string>, role: Role, pointer: string): string {
  const uri = uris.get(`${role} ${pointer}`);
  if (!uri) throw new Error(`no ${role} artifact at '${pointer}'; have ${[...uris.keys()].join(', ')}`);
  return uri;
}

function restoreWarning(role: Role, pointer: string, reason: Reason, storageUri: string) {
  return {
    code: 'artifact_restore_failed',
    message: expect.any(String),
    details: { pointer, reason, role, storage_uri: storageUri },
  };
}

interface Warning {
  code: string;
  message: string;
  details?: { role?: string; pointer?: string };
}

/** Restore warnings in a stable order, since artifacts are restored concurrently. */
function sorted<T extends { details?: { role?: string; pointer?: string } }>(warnings: T[]): T[] {
  const key = (w: T) => `${w.details?.role} ${w.details?.pointer}`;
  return [...warnings].sort((a, b) => key(a).localeCompare(key(b)));
}

function pick(spec: BackendSpec, reason: Reason): Breakage {
  const breakage = spec.breakages.find((b) => b.reason === reason);
  if (!breakage) throw new Error(`no breakage for ${reason}`);
  return breakage;
}

/** GET /v1/jobs/{id}<query> (or a sub-route: `query` may start with a slash), timed. */
async function retrieve(b: Backend, jobId: string, query = '') {
  const started = performance.now();
  const res = await b.ctx.app.inject({
    method: 'GET',
    url: `/v1/jobs/${jobId}${query}`,
    headers: { 'api-key': b.key },
  });
  return { res, ms: performance.now() - started };
}

function defineFailureSuite(spec: BackendSpec) {
  describe(`restore failures on ${spec.name}`, () => {
    let b: Backend;

    beforeAll(async () => {
      const ctx = await spec.setup();
      const tenant = await createTenant(ctx.db);
      b = { ctx, key: tenant.key, organizationId: tenant.organizationId };
    });
    afterEach(() => spec.repair());
    afterAll(() => b?.ctx.close());

    it.each(spec.breakages)(
      '$label: that value is null with one $reason warning, the others are restored',
      async (breakage) => {
        const request = documentsRequest(3);
        const job = await seedJob(b.ctx, b.organizationId, { request });
        const uri = uriOf(await artifactUris(b.ctx, job.id), 'request', '/documents/1/url');
        await breakage.apply(uri);

        const { res } = await retrieve(b, job.id, '?include_request=true');
        expect(res.statusCode).toBe(200);
        const body = res.json();
        const expected = structuredClone(request) as { documents: { url: string | null }[] };
        expected.documents[1].url = null;
        expect(body.request).toEqual(expected);
        expect(body.warnings).toEqual([restoreWarning('request', '/documents/1/url', breakage.reason, uri)]);
        expect(body.warnings[0].message).toContain("'/documents/1/url'");
        expect(body).toMatchObject({ id: job.id, status: 'queued', response: null });
      },
    );

    it('answers a read that never ends within the restore timeout, not after the stall', async () => {
      const request = documentsRequest(2);
      const job = await seedJob(b.ctx, b.organizationId, { request });
      const uri = uriOf(await artifactUris(b.ctx, job.id), 'request', '/documents/0/url');
      await pick(spec, 'timeout').apply(uri);

      const { res, ms } = await retrieve(b, job.id, '?include_request=true');
      expect(res.statusCode).toBe(200);
      expect(res.json().warnings).toEqual([restoreWarning('request', '/documents/0/url', 'timeout', uri)]);
      expect(res.json().request.documents[1]).toEqual(request.documents[1]);
      expect(ms).toBeGreaterThanOrEqual(RESTORE_TIMEOUT_MS - 50);
      // The stall is 10 s (GCS) or for ever (FIFO): the answer is bounded by the timeout alone.
      expect(ms).toBeLessThan(4000);
    });

    it('gives each of several failing artifacts its own warning and restores the healthy ones', async () => {
      // Every reason once, between healthy values (1 and 4).
      const failing: [number, Reason][] = [
        [0, 'not_found'],
        [2, 'storage_error'],
        [3, 'timeout'],
        [5, 'checksum_mismatch'],
        [6, 'size_mismatch'],
      ];
      const request = documentsRequest(7);
      const job = await seedJob(b.ctx, b.organizationId, { request });
      const uris = await artifactUris(b.ctx, job.id);
      const expectedWarnings = [];
      const expected = structuredClone(request) as { documents: { url: string | null }[] };
      for (const [i, reason] of failing) {
        const uri = uriOf(uris, 'request', `/documents/${i}/url`);
        await pick(spec, reason).apply(uri);
        expectedWarnings.push(restoreWarning('request', `/documents/${i}/url`, reason, uri));
        expected.documents[i].url = null;
      }

      const { res } = await retrieve(b, job.id, '?include_request=true');
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.warnings).toHaveLength(failing.length);
      expect(sorted(body.warnings)).toEqual(sorted(expectedWarnings));
      expect(body.request).toEqual(expected);
      expect(body.request.documents[1].url).toBe(request.documents[1].url);
      expect(body.request.documents[4].url).toBe(request.documents[4].url);
    });

    it('nulls a failing response artifact with include_response and leaves the request alone', async () => {
      const response = pagesResponse(3);
      const job = await seedJob(b.ctx, b.organizationId, {
        request: documentsRequest(1),
        status: 'completed',
        response,
      });
      const uris = await artifactUris(b.ctx, job.id);
      const uri = uriOf(uris, 'response', '/body/pages/2/image');
      await pick(spec, 'checksum_mismatch').apply(uri);
      // The request side is broken too, but not asked for: it must not be read.
      await pick(spec, 'not_found').apply(uriOf(uris, 'request', '/documents/0/url'));

      const { res } = await retrieve(b, job.id, '?include_response=true');
      expect(res.statusCode).toBe(200);
      const body = res.json();
      const expected = structuredClone(response) as { body: { pages: { image: string | null }[] } };
      expected.body.pages[2].image = null;
      expect(body.response).toEqual(expected);
      expect(body.request).toBeNull();
      expect(body.warnings).toEqual([
        restoreWarning('response', '/body/pages/2/image', 'checksum_mismatch', uri),
      ]);
    });

    it('reports failures of both documents when both include flags are set', async () => {
      const request = documentsRequest(3);
      const response = pagesResponse(3);
      const job = await seedJob(b.ctx, b.organizationId, { request, status: 'completed', response });
      const uris = await artifactUris(b.ctx, job.id);
      const requestUri = uriOf(uris, 'request', '/documents/2/url');
      const responseUri = uriOf(uris, 'response', '/body/pages/0/image');
      await pick(spec, 'storage_error').apply(requestUri);
      await pick(spec, 'size_mismatch').apply(responseUri);

      const { res } = await retrieve(b, job.id, '?include_request=true&include_response=true');
      expect(res.statusCode).toBe(200);
      const body = res.json();
      const expectedRequest = structuredClone(request) as { documents: { url: string | null }[] };
      expectedRequest.documents[2].url = null;
      const expectedResponse = structuredClone(response) as { body: { pages: { image: string | null }[] } };
      expectedResponse.body.pages[0].image = null;
      expect(body.request).toEqual(expectedRequest);
      expect(body.response).toEqual(expectedResponse);
      expect(sorted(body.warnings)).toEqual([
        restoreWarning('request', '/documents/2/url', 'storage_error', requestUri),
        restoreWarning('response', '/body/pages/0/image', 'size_mismatch', responseUri),
      ]);
    });

    describe('a request offloaded whole', () => {
      const wholeRequest = () => ({ ...documentsRequest(2), notes: 'x'.repeat(5000) });

      it('is null with exactly one warning when the whole-document object fails', async () => {
        const job = await seedJob(b.ctx, b.organizationId, { request: wholeRequest() });
        const uris = await artifactUris(b.ctx, job.id);
        expect([...uris.keys()].sort()).toEqual([
          'request ',
          'request /documents/0/url',
          'request /documents/1/url',
        ]);
        const uri = uriOf(uris, 'request', '');
        await pick(spec, 'checksum_mismatch').apply(uri);

        const { res } = await retrieve(b, job.id, '?include_request=true');
        expect(res.statusCode).toBe(200);
        expect(res.json().request).toBeNull();
        expect(res.json().warnings).toEqual([restoreWarning('request', '', 'checksum_mismatch', uri)]);
      });

      it('has one warning, not one per value inside, when the document and a value inside both fail', async () => {
        const job = await seedJob(b.ctx, b.organizationId, { request: wholeRequest() });
        const uris = await artifactUris(b.ctx, job.id);
        const uri = uriOf(uris, 'request', '');
        await pick(spec, 'not_found').apply(uri);
        await pick(spec, 'size_mismatch').apply(uriOf(uris, 'request', '/documents/1/url'));

        const { res } = await retrieve(b, job.id, '?include_request=true');
        expect(res.statusCode).toBe(200);
        expect(res.json().request).toBeNull();
        expect(res.json().warnings).toEqual([restoreWarning('request', '', 'not_found', uri)]);
      });

      it('keeps the document and nulls the one value inside that fails', async () => {
        const request = wholeRequest();
        const job = await seedJob(b.ctx, b.organizationId, { request });
        const uri = uriOf(await artifactUris(b.ctx, job.id), 'request', '/documents/1/url');
        await pick(spec, 'storage_error').apply(uri);

        const { res } = await retrieve(b, job.id, '?include_request=true');
        expect(res.statusCode).toBe(200);
        const expected = structuredClone(request) as { documents: { url: string | null }[] };
        expected.documents[1].url = null;
        expect(res.json().request).toEqual(expected);
        expect(res.json().warnings).toEqual([
          restoreWarning('request', '/documents/1/url', 'storage_error', uri),
        ]);
      });
    });

    it("puts the job's stored warnings first, then one per failed artifact", async () => {
      const stored = [
        { code: 'low_quality_scan', message: 'page 2 is blurry', details: { page: 2 } },
        { code: 'truncated_text', message: 'text cut at 10000 characters' },
      ];
      const job = await seedJob(b.ctx, b.organizationId, {
        request: documentsRequest(3),
        status: 'completed',
        response: pagesResponse(1),
        warnings: stored,
      });
      const uris = await artifactUris(b.ctx, job.id);
      await pick(spec, 'not_found').apply(uriOf(uris, 'request', '/documents/0/url'));
      await pick(spec, 'timeout').apply(uriOf(uris, 'request', '/documents/2/url'));
      await pick(spec, 'checksum_mismatch').apply(uriOf(uris, 'response', '/body/pages/0/image'));

      const { res } = await retrieve(b, job.id, '?include_request=1&include_response=1');
      expect(res.statusCode).toBe(200);
      const warnings: Warning[] = res.json().warnings;
      expect(warnings).toHaveLength(5);
      expect(warnings.slice(0, 2)).toEqual(stored);
      expect(sorted(warnings.slice(2))).toEqual([
        restoreWarning(
          'request',
          '/documents/0/url',
          'not_found',
          uriOf(uris, 'request', '/documents/0/url'),
        ),
        restoreWarning('request', '/documents/2/url', 'timeout', uriOf(uris, 'request', '/documents/2/url')),
        restoreWarning(
          'response',
          '/body/pages/0/image',
          'checksum_mismatch',
          uriOf(uris, 'response', '/body/pages/0/image'),
        ),
      ]);
    });

    it('never reads storage for a lightweight retrieve or the status route', async () => {
      const job = await seedJob(b.ctx, b.organizationId, {
        request: documentsRequest(2),
        status: 'completed',
        response: pagesResponse(2),
        warnings: [{ code: 'stored', message: 'kept' }],
      });
      const uris = await artifactUris(b.ctx, job.id);
      expect(uris.size).toBe(4);
      for (const uri of uris.values()) await pick(spec, 'not_found').apply(uri);

      for (const query of ['', '?include_request=false&include_response=0']) {
        const { res } = await retrieve(b, job.id, query);
        expect(res.statusCode).toBe(200);
        expect(res.json()).toMatchObject({ request: null, response: null, warnings: [{ code: 'stored' }] });
        expect(res.json().warnings).toHaveLength(1);
      }
      const { res: status } = await retrieve(b, job.id, '/status');
      expect(status.statusCode).toBe(200);
      expect(status.json().warnings).toEqual([{ code: 'stored', message: 'kept' }]);

      // The objects really are gone: asking for the documents finds every one missing.
      const { res: full } = await retrieve(b, job.id, '?include_request=true&include_response=true');
      expect(full.statusCode).toBe(200);
      expect(full.json().warnings).toHaveLength(5);
      expect(
        full
          .json()
          .warnings.slice(1)
          .every((w: Warning) => w.code === 'artifact_restore_failed'),
      ).toBe(true);
    });
  });
}

beforeAll(async () => {
  gcs = await startFakeGcsServer({ buckets: ['jobs'] });
});
afterAll(() => gcs?.stop());

defineFailureSuite(GCS);
defineFailureSuite(FILESYSTEM);

describe('storage access seen from the GCS request log', () => {
  const DELAY_MS = 300;
  let bounded: Backend;
  let wide: Backend;

  const open = async (concurrency: number): Promise<Backend> => {
    const ctx = await createTestApp({
      env: {
        OFFLOAD_THRESHOLD_BYTES: '1024',
        RESTORE_CONCURRENCY: String(concurrency),
        RESTORE_TIMEOUT_MS: '5000',
      },
      store: new GcsObjectStore({
        bucket: 'jobs',
        prefix: 'artifacts',
        apiEndpoint: gcs.url,
        projectId: 'test',
        maxRetries: 0,
      }),
    });
    const tenant = await createTenant(ctx.db);
    return { ctx, key: tenant.key, organizationId: tenant.organizationId };
  };

  beforeAll(async () => {
    [bounded, wide] = await Promise.all([open(2), open(6)]);
  });
  afterEach(() => gcs.faults.clear());
  afterAll(async () => {
    await bounded?.ctx.close();
    await wide?.ctx.close();
  });

  /**
   * Holds every read of the job's objects for DELAY_MS on the server and counts how many are held
   * at once. The server holds a read for less time than the client waits on it, so the maximum
   * seen here can only be at most the client's real concurrency.
   */
  const watchReads = (b: Backend, jobId: string) => {
    const prefix = `artifacts/${b.organizationId}/${jobId}/`;
    const seen = { reads: 0, inFlight: 0, maxInFlight: 0 };
    gcs.faults.add({
      op: 'get',
      prefix,
      type: 'delay',
      ms: DELAY_MS,
      test: () => {
        seen.reads++;
        seen.inFlight++;
        seen.maxInFlight = Math.max(seen.maxInFlight, seen.inFlight);
        return true;
      },
    });
    // Rules are consulted in order, so this one is asked only once the delay above has ended.
    gcs.faults.add({
      op: 'get',
      prefix,
      type: 'delay',
      ms: 0,
      test: () => {
        seen.inFlight--;
        return false;
      },
    });
    return seen;
  };

  it('sends no request to storage for a lightweight retrieve or the status route', async () => {
    const job = await seedJob(bounded.ctx, bounded.organizationId, {
      request: documentsRequest(2),
      status: 'completed',
      response: pagesResponse(2),
    });
    const queued = await seedJob(bounded.ctx, bounded.organizationId, { request: documentsRequest(2) });
    const before = gcs.requests.length;

    for (const url of [
      `${job.id}`,
      `${job.id}?include_request=false&include_response=false`,
      `${job.id}/status`,
      `${job.id}/status?wait_seconds=0`,
      // A queued job has no response to restore, and its request was not asked for.
      `${queued.id}?include_response=true`,
    ]) {
      const { res } = await retrieve(bounded, url);
      expect(res.statusCode).toBe(200);
    }
    expect(gcs.requests.slice(before)).toEqual([]);

    // The log does see reads: asking for the request reads exactly its two objects.
    const { res } = await retrieve(bounded, job.id, '?include_request=true');
    expect(res.json().warnings).toBeNull();
    const uris = await artifactUris(bounded.ctx, job.id);
    expect(
      gcs.requests
        .slice(before)
        .map((r) => `${r.op} ${r.name}`)
        .sort(),
    ).toEqual([
      `get ${objectName(uriOf(uris, 'request', '/documents/0/url'))}`,
      `get ${objectName(uriOf(uris, 'request', '/documents/1/url'))}`,
    ]);
  });

  it('reads at most RESTORE_CONCURRENCY=2 artifacts at once, in three waves for six', async () => {
    const request = documentsRequest(6);
    const job = await seedJob(bounded.ctx, bounded.organizationId, { request });
    const seen = watchReads(bounded, job.id);

    const { res, ms } = await retrieve(bounded, job.id, '?include_request=true');
    expect(res.json().request).toEqual(request);
    expect(res.json().warnings).toBeNull();
    expect(seen.reads).toBe(6);
    expect(seen.maxInFlight).toBe(2);
    // Each wave waits at least DELAY_MS on the server: three of them cannot take less.
    expect(ms).toBeGreaterThanOrEqual(3 * DELAY_MS - 100);
  });

  it('reads all six artifacts at once with RESTORE_CONCURRENCY=6', async () => {
    const request = documentsRequest(6);
    const job = await seedJob(wide.ctx, wide.organizationId, { request });
    const seen = watchReads(wide, job.id);

    const { res } = await retrieve(wide, job.id, '?include_request=true');
    expect(res.json().request).toEqual(request);
    expect(seen.reads).toBe(6);
    expect(seen.maxInFlight).toBe(6);
  });

  it('keeps the RESTORE_CONCURRENCY bound when request and response are restored together', async () => {
    // The limit is what one retrieve may hold open against storage, whichever documents it reads.
    const request = documentsRequest(3);
    const response = pagesResponse(3);
    const job = await seedJob(bounded.ctx, bounded.organizationId, {
      request,
      status: 'completed',
      response,
    });
    const seen = watchReads(bounded, job.id);

    const { res } = await retrieve(bounded, job.id, '?include_request=true&include_response=true');
    expect(res.json()).toMatchObject({ request, response, warnings: null });
    expect(seen.reads).toBe(6);
    expect(seen.maxInFlight).toBeLessThanOrEqual(2);
  });
});
