import { createHash, randomBytes } from 'node:crypto';
import { CRC32C, Storage } from '@google-cloud/storage';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GcsObjectStore, type GcsObjectStoreOptions } from '../../src/storage/gcs-store.js';
import { ObjectNotFoundError, StorageError } from '../../src/storage/object-store.js';
import { type FakeGcsServer, startFakeGcsServer } from '../support/fake-gcs-server.js';

// The real @google-cloud/storage client, through GcsObjectStore, against test/support/fake-gcs-server.

const MiB = 1024 * 1024;
const BUCKET = 'test-bucket';
const binary = { contentType: 'application/octet-stream' };
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The CRC32C the client library computes, base64 as GCS reports it. */
function crc32c(bytes: Buffer): string {
  const crc = new CRC32C();
  crc.update(bytes);
  return crc.toString();
}

let gcs: FakeGcsServer;

/** One retry at the client's smallest possible wait (1 s), so that failing cases stay fast. */
function makeStore(options: Partial<GcsObjectStoreOptions> = {}): GcsObjectStore {
  return new GcsObjectStore({
    bucket: BUCKET,
    prefix: 'jobs',
    apiEndpoint: gcs.url,
    projectId: 'test-project',
    maxRetries: 1,
    maxRetryDelayMs: 1000,
    requestTimeoutMs: 5000,
    ...options,
  });
}

async function failure(promise: Promise<unknown>): Promise<StorageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof StorageError)) throw new Error(`expected a StorageError, got ${String(error)}`);
  return error;
}

function requestsFor(name: string) {
  return gcs.requests.filter((r) => r.name === name).map((r) => `${r.method} ${r.op} ${r.status}`);
}

beforeAll(async () => {
  gcs = await startFakeGcsServer({ buckets: [BUCKET] });
});

afterAll(async () => {
  await gcs.stop();
});

describe('GcsObjectStore', () => {
  let store: GcsObjectStore;

  beforeAll(() => {
    store = makeStore();
  });

  afterEach(() => {
    gcs.faults.clear();
  });

  it('addresses objects as gs://bucket/prefix/key', () => {
    expect(store.baseUri).toBe('gs://test-bucket/jobs');
    expect(makeStore({ prefix: '/a/b/' }).baseUri).toBe('gs://test-bucket/a/b');
    expect(makeStore({ prefix: '' }).baseUri).toBe('gs://test-bucket');
  });

  it('puts and gets binary data, reporting size and sha256', async () => {
    const bytes = randomBytes(64 * 1024 + 3);
    const stored = await store.put('org1/job1/input/0.bin', bytes, binary);
    expect(stored).toEqual({
      uri: 'gs://test-bucket/jobs/org1/job1/input/0.bin',
      byteSize: bytes.length,
      sha256: sha256(bytes),
    });
    const object = gcs.objects.get(BUCKET, 'jobs/org1/job1/input/0.bin');
    expect(object?.data.equals(bytes)).toBe(true);
    expect(object?.contentType).toBe('application/octet-stream');
    expect((await store.get(stored.uri)).equals(bytes)).toBe(true);
  });

  it('puts a multi-MB object in one multipart request', async () => {
    const bytes = randomBytes(5 * MiB + 1);
    const stored = await store.put('org1/job1/input/big.bin', bytes, binary);
    expect(stored.byteSize).toBe(bytes.length);
    expect(stored.sha256).toBe(sha256(bytes));
    expect(requestsFor('jobs/org1/job1/input/big.bin')).toEqual(['POST put 200']);
    expect((await store.get(stored.uri)).equals(bytes)).toBe(true);
  });

  it('puts an object above the threshold through a resumable upload in chunks', async () => {
    const resumable = makeStore({ resumableThresholdBytes: MiB, resumableChunkBytes: MiB });
    const bytes = randomBytes(3 * MiB + MiB / 2);
    const stored = await resumable.put('org1/job1/input/huge.bin', bytes, { contentType: 'video/mp4' });
    expect(stored.sha256).toBe(sha256(bytes));
    expect(requestsFor('jobs/org1/job1/input/huge.bin')).toEqual([
      'POST put 200',
      'PUT put-chunk 308',
      'PUT put-chunk 308',
      'PUT put-chunk 308',
      'PUT put-chunk 200',
    ]);
    const object = gcs.objects.get(BUCKET, 'jobs/org1/job1/input/huge.bin');
    expect(object?.data.equals(bytes)).toBe(true);
    expect(object?.contentType).toBe('video/mp4');
    expect((await resumable.get(stored.uri)).equals(bytes)).toBe(true);
  });

  it('refuses a resumable chunk size GCS would refuse', () => {
    expect(() => makeStore({ resumableChunkBytes: 1000 })).toThrow(/256 KiB/);
  });

  it('stores an empty object', async () => {
    const stored = await store.put('org1/job1/input/empty', Buffer.alloc(0), { contentType: 'text/plain' });
    expect(stored.byteSize).toBe(0);
    expect((await store.get(stored.uri)).length).toBe(0);
  });

  it('sends no credentials to a custom endpoint outside googleapis.com', async () => {
    await store.put('org1/job1/input/auth', Buffer.from('x'), binary);
    expect(gcs.requests.length).toBeGreaterThan(0);
    expect(gcs.requests.filter((r) => r.headers.authorization !== undefined)).toEqual([]);
  });

  it('answers ObjectNotFoundError for a missing object', async () => {
    const uri = 'gs://test-bucket/jobs/org1/nope/input/0.bin';
    const error = await failure(store.get(uri));
    expect(error).toBeInstanceOf(ObjectNotFoundError);
    expect(error.uri).toBe(uri);
  });

  it('answers StorageError, not not-found, when the bucket is missing on upload', async () => {
    const other = makeStore({ bucket: 'no-such-bucket', maxRetries: 0 });
    const error = await failure(other.put('org1/job1/input/0.bin', Buffer.from('x'), binary));
    expect(error).not.toBeInstanceOf(ObjectNotFoundError);
    expect(error.message).toMatch(/404/);
  });

  it.each([
    'gs://other-bucket/jobs/org1/job1/input/0.bin',
    'gs://test-bucket/other/org1/job1/input/0.bin',
    'gs://test-bucket/jobsx/org1/job1/input/0.bin',
    'gs://test-bucket/jobs',
    'gs://test-bucket/jobs/',
    'gs://test-bucket/jobs//org1/x',
    'gs://test-bucket/jobs/../x',
    'file:///tmp/org1/job1/input/0.bin',
  ])('refuses the foreign URI %s without asking the server', async (uri) => {
    const before = gcs.requests.length;
    for (const attempt of [() => store.get(uri), () => store.delete(uri)]) {
      const error = await failure(attempt());
      expect(error).not.toBeInstanceOf(ObjectNotFoundError);
    }
    expect(gcs.requests.length).toBe(before);
  });

  it.each(['', '/org1/x', 'org1//x', 'org1/x/', 'org1/../x', 'org1/./x'])(
    'refuses to put the key %j',
    async (key) => {
      await failure(store.put(key, Buffer.from('x'), binary));
    },
  );

  it('deletes idempotently', async () => {
    const stored = await store.put('org1/job2/input/0.bin', Buffer.from('x'), binary);
    await store.delete(stored.uri);
    expect(gcs.objects.get(BUCKET, 'jobs/org1/job2/input/0.bin')).toBeUndefined();
    await store.delete(stored.uri);
    expect(requestsFor('jobs/org1/job2/input/0.bin').slice(-2)).toEqual([
      'DELETE delete 204',
      'DELETE delete 404',
    ]);
  });

  describe('faults on download', () => {
    let stored: { uri: string; sha256: string; byteSize: number };
    const bytes = randomBytes(10_000);

    beforeAll(async () => {
      stored = await store.put('org1/faults/input/0.bin', bytes, binary);
    });

    it('corrupt: the bytes reach the caller, whose sha256 check is what catches them', async () => {
      const fault = gcs.faults.add({ op: 'get', name: 'jobs/org1/faults/input/0.bin', type: 'corrupt' });
      const got = await store.get(stored.uri);
      expect(fault.hits).toBe(1);
      expect(got.length).toBe(stored.byteSize);
      expect(sha256(got)).not.toBe(stored.sha256);
    });

    it('corrupt with the original hash: the client itself rejects the download', async () => {
      gcs.faults.add({ op: 'get', name: 'jobs/org1/faults/input/0.bin', type: 'corrupt', keepHash: true });
      const error = await failure(store.get(stored.uri));
      expect(error).not.toBeInstanceOf(ObjectNotFoundError);
      expect(error.message).toMatch(/CONTENT_DOWNLOAD_MISMATCH/);
    });

    it('truncate: a shorter, complete answer reaches the caller', async () => {
      gcs.faults.add({ op: 'get', prefix: 'jobs/org1/faults/', type: 'truncate', bytes: 100 });
      const got = await store.get(stored.uri);
      expect(got.equals(bytes.subarray(0, 100))).toBe(true);
    });

    it('truncate by cutting the connection: the stall watchdog turns a hang into StorageError', async () => {
      const quick = makeStore({ requestTimeoutMs: 300 });
      gcs.faults.add({ op: 'get', type: 'truncate', bytes: 100, cutConnection: true });
      const started = Date.now();
      const error = await failure(quick.get(stored.uri));
      expect(error.message).toMatch(/stalled/);
      expect(Date.now() - started).toBeLessThan(2000);
    });

    it('delay: the caller’s abort signal ends the download at once', async () => {
      const fault = gcs.faults.add({ op: 'get', type: 'delay', ms: 500 });
      const started = Date.now();
      const error = await failure(store.get(stored.uri, { signal: AbortSignal.timeout(50) }));
      expect(Date.now() - started).toBeLessThan(400);
      expect(error.message).toMatch(/aborted/);
      expect(fault.hits).toBe(1);
    });

    it('a request timeout shorter than the delay fails the download', async () => {
      const quick = makeStore({ requestTimeoutMs: 100, maxRetries: 0 });
      gcs.faults.add({ op: 'get', type: 'delay', ms: 300 });
      const error = await failure(quick.get(stored.uri));
      expect(error.message).toMatch(/timeout/);
    });

    it('a signal already aborted fails before any request', async () => {
      const before = gcs.requests.length;
      await failure(store.get(stored.uri, { signal: AbortSignal.abort() }));
      await failure(store.put('org1/faults/input/1.bin', bytes, { ...binary, signal: AbortSignal.abort() }));
      expect(gcs.requests.length).toBe(before);
    });
  });

  describe('faults on upload', () => {
    it.each(['corrupt', 'truncate'] as const)(
      '%s: the client sees the checksum differ, deletes the object and fails',
      async (type) => {
        const name = `jobs/org1/upload-${type}/input/0.bin`;
        gcs.faults.add({ op: 'put', name, ...(type === 'corrupt' ? { type } : { type, bytes: 10 }) });
        await failure(store.put(`org1/upload-${type}/input/0.bin`, randomBytes(1000), binary));
        expect(gcs.objects.get(BUCKET, name)).toBeUndefined();
        expect(requestsFor(name)).toEqual(['POST put 200', 'DELETE delete 204']);
      },
    );

    it('delay: put rejects on abort at once, and the upload is cut: the object never lands', async () => {
      const name = 'jobs/org1/upload-delay/input/0.bin';
      const fault = gcs.faults.add({ op: 'put', name, type: 'delay', ms: 200 });
      const started = Date.now();
      const error = await failure(
        store.put('org1/upload-delay/input/0.bin', Buffer.from('late'), {
          ...binary,
          signal: AbortSignal.timeout(30),
        }),
      );
      expect(Date.now() - started).toBeLessThan(150);
      expect(error.message).toMatch(/aborted/);
      // The client cannot cancel an upload itself; the store destroys its request, so the server's
      // delay ends with the connection and nothing is stored, then or once the delay is over.
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(fault.hits).toBe(1);
      expect(gcs.objects.get(BUCKET, name)).toBeUndefined();
      expect(requestsFor(name)).toEqual(['POST put 0']);
    });
  });
});

// Each case waits for the client's retry delay (1 s at the least). They run one after another:
// run side by side on a loaded machine, the client's upload retries interfered with each other
// (an upload gave up after its first 503), which made these cases flaky.
describe('GcsObjectStore retries', () => {
  it('gives up on a download after 1 + maxRetries attempts of 503', async ({ expect }) => {
    const store = makeStore({ maxRetries: 2 });
    const stored = await store.put('org2/r1/input/0.bin', Buffer.from('x'), binary);
    const fault = gcs.faults.add({
      op: 'get',
      name: 'jobs/org2/r1/input/0.bin',
      type: 'status',
      status: 503,
    });
    const error = await failure(store.get(stored.uri));
    expect(error).not.toBeInstanceOf(ObjectNotFoundError);
    expect(error.message).toMatch(/503/);
    expect(error.cause).toBeDefined();
    expect(fault.hits).toBe(3);
  });

  it('recovers from one 500 on download', async ({ expect }) => {
    const store = makeStore();
    const stored = await store.put('org2/r2/input/0.bin', Buffer.from('x'), binary);
    const fault = gcs.faults.add({
      op: 'get',
      name: 'jobs/org2/r2/input/0.bin',
      type: 'status',
      status: 500,
      times: 1,
    });
    expect((await store.get(stored.uri)).toString()).toBe('x');
    expect(fault.hits).toBe(1);
  });

  it('gives up on an upload after 1 + maxRetries attempts of 503', async ({ expect }) => {
    const store = makeStore();
    const name = 'jobs/org2/r3/input/0.bin';
    const fault = gcs.faults.add({ op: 'put', name, type: 'status', status: 503 });
    const error = await failure(store.put('org2/r3/input/0.bin', Buffer.from('x'), binary));
    expect(error.message).toMatch(/503/);
    expect(fault.hits).toBe(2);
    expect(gcs.objects.get(BUCKET, name)).toBeUndefined();
  });

  it('retries an upload without a precondition after one 503', async ({ expect }) => {
    const store = makeStore();
    const name = 'jobs/org2/r4/input/0.bin';
    const fault = gcs.faults.add({ op: 'put', name, type: 'status', status: 503, times: 1 });
    await store.put('org2/r4/input/0.bin', Buffer.from('x'), binary);
    expect(fault.hits).toBe(1);
    expect(requestsFor(name)).toEqual(['POST put 503', 'POST put 200']);
  });

  it('resumes a chunked upload after a 503 in the middle', async ({ expect }) => {
    const store = makeStore({ resumableThresholdBytes: MiB, resumableChunkBytes: MiB / 4 });
    const name = 'jobs/org2/r5/input/0.bin';
    const fault = gcs.faults.add({ op: 'put-chunk', name, type: 'status', status: 503, skip: 2, times: 1 });
    const bytes = randomBytes(MiB + 5);
    const stored = await store.put('org2/r5/input/0.bin', bytes, binary);
    expect(fault.hits).toBe(1);
    expect(stored.sha256).toBe(sha256(bytes));
    expect(gcs.objects.get(BUCKET, name)?.data.equals(bytes)).toBe(true);
    expect(gcs.objects.get(BUCKET, name)?.crc32c).toBe(crc32c(bytes));
  });

  it('gives up on a delete after repeated 500s and retries a single one', async ({ expect }) => {
    const store = makeStore();
    const a = await store.put('org2/r6/input/a', Buffer.from('x'), binary);
    const b = await store.put('org2/r6/input/b', Buffer.from('x'), binary);
    const always = gcs.faults.add({
      op: 'delete',
      name: 'jobs/org2/r6/input/a',
      type: 'status',
      status: 500,
    });
    const once = gcs.faults.add({
      op: 'delete',
      name: 'jobs/org2/r6/input/b',
      type: 'status',
      status: 503,
      times: 1,
    });
    const [failed] = await Promise.all([failure(store.delete(a.uri)), store.delete(b.uri)]);
    expect(failed.message).toMatch(/500/);
    expect(always.hits).toBe(2);
    expect(once.hits).toBe(1);
    expect(gcs.objects.get(BUCKET, 'jobs/org2/r6/input/b')).toBeUndefined();
  });

  it('does not retry with maxRetries 0, nor on a 4xx', async ({ expect }) => {
    const never = makeStore({ maxRetries: 0 });
    const stored = await never.put('org2/r7/input/0.bin', Buffer.from('x'), binary);
    const fault = gcs.faults.add({
      op: 'get',
      name: 'jobs/org2/r7/input/0.bin',
      type: 'status',
      status: 503,
    });
    await failure(never.get(stored.uri));
    expect(fault.hits).toBe(1);
    fault.remove();
    const forbidden = gcs.faults.add({
      op: 'get',
      name: 'jobs/org2/r7/input/0.bin',
      type: 'status',
      status: 403,
    });
    const error = await failure(makeStore().get(stored.uri));
    expect(error.message).toMatch(/403/);
    expect(forbidden.hits).toBe(1);
  });
});

describe('fake GCS server', () => {
  // What the store does not use but the server promises: ranges, listing, metadata.
  it('serves ranges, lists by prefix and answers metadata to the plain client', async () => {
    const storage = new Storage({ apiEndpoint: gcs.url, projectId: 'test-project' });
    const bucket = storage.bucket(BUCKET);
    const bytes = Buffer.from('0123456789');
    gcs.objects.put(BUCKET, 'listing/a/1', bytes, 'text/plain');
    gcs.objects.put(BUCKET, 'listing/a/2', bytes);
    gcs.objects.put(BUCKET, 'listing/b/3', bytes);

    const [range] = await bucket.file('listing/a/1').download({ start: 2, end: 5 });
    expect(range.toString()).toBe('2345');

    const [files] = await bucket.getFiles({ prefix: 'listing/a/' });
    expect(files.map((f) => f.name)).toEqual(['listing/a/1', 'listing/a/2']);

    const [metadata] = await bucket.file('listing/a/1').getMetadata();
    expect(metadata).toMatchObject({ size: '10', contentType: 'text/plain', crc32c: crc32c(bytes) });

    const [exists] = await bucket.file('listing/nope').exists();
    expect(exists).toBe(false);
  });
});
