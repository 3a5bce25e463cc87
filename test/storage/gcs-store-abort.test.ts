import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CALL_HEADER } from '../../src/storage/abortable-requests.js';
import { GcsObjectStore, type GcsObjectStoreOptions } from '../../src/storage/gcs-store.js';
import { StorageError } from '../../src/storage/object-store.js';
import { type FakeGcsServer, type Fault, startFakeGcsServer } from '../support/fake-gcs-server.js';

// What an abort does to the real @google-cloud/storage client's requests, seen from the test
// server: an abandoned call must not go on and change storage after its caller gave up on it.

const KiB = 1024;
const BUCKET = 'abort-bucket';
const binary = { contentType: 'application/octet-stream' };
/** How long the server holds a request: the call is aborted long before. */
const DELAY_MS = 400;

let gcs: FakeGcsServer;

function makeStore(options: Partial<GcsObjectStoreOptions> = {}): GcsObjectStore {
  return new GcsObjectStore({
    bucket: BUCKET,
    prefix: 'p',
    apiEndpoint: gcs.url,
    projectId: 'test-project',
    maxRetries: 2,
    maxRetryDelayMs: 1000,
    requestTimeoutMs: 5000,
    // Above 256 KiB: resumable, in 256 KiB chunks.
    resumableThresholdBytes: 256 * KiB,
    resumableChunkBytes: 256 * KiB,
    ...options,
  });
}

async function rejection(promise: Promise<unknown>): Promise<StorageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof StorageError)) throw new Error(`expected a StorageError, got ${String(error)}`);
  return error;
}

/**
 * Runs `call` with a signal that aborts once the server holds its request (the fault's first
 * hit); answers the call's error and how long after the abort it came.
 */
async function abortWhileHeld(fault: Fault, call: (signal: AbortSignal) => Promise<unknown>) {
  const controller = new AbortController();
  const settled = rejection(call(controller.signal));
  await expect.poll(() => fault.hits, { interval: 5 }).toBe(1);
  const aborted = performance.now();
  controller.abort();
  const error = await settled;
  return { error, ms: performance.now() - aborted };
}

/** Method, operation and status of each request for `name`; status 0: never answered. */
const requestsFor = (name: string) =>
  gcs.requests.filter((r) => r.name === name).map((r) => `${r.method} ${r.op} ${r.status}`);

/** Whether every request of operation `op` for `name` named its call, as the abort needs. */
const allTagged = (name: string, op: string) =>
  gcs.requests
    .filter((r) => r.name === name && r.op === op)
    .every((r) => /^\d+-\d+$/.test(String(r.headers[CALL_HEADER])));

beforeAll(async () => {
  gcs = await startFakeGcsServer({ buckets: [BUCKET] });
});
afterEach(() => gcs.faults.clear());
afterAll(() => gcs.stop());

describe('GcsObjectStore when the signal aborts', () => {
  it.each([
    ['a multipart upload', 'put' as const, 10 * KiB],
    ['the start of a resumable upload', 'put' as const, 600 * KiB],
    ['a chunk of a resumable upload', 'put-chunk' as const, 600 * KiB],
  ])('cuts %s: the object never lands, not even after the delay', async (_, op, size) => {
    const key = `org/${op}-${size}/request/0.bin`;
    const name = `p/${key}`;
    // The second chunk, for a chunked upload: the first one has reached the server by then.
    const fault = gcs.faults.add({ op, name, type: 'delay', ms: DELAY_MS, skip: op === 'put-chunk' ? 1 : 0 });
    const store = makeStore();
    const { error, ms } = await abortWhileHeld(fault, (signal) =>
      store.put(key, randomBytes(size), { ...binary, signal }),
    );
    expect(error.message).toMatch(/aborted/);
    expect(ms).toBeLessThan(100);

    // Long enough for the delay to be over and for a retry of the client (at least 1 s later).
    await sleep(DELAY_MS + 1000);
    expect(gcs.objects.get(BUCKET, name)).toBeUndefined();
    // The held request was never answered: the client hung up; no retry reached the server.
    const requests = requestsFor(name);
    expect(requests.at(-1)).toBe(op === 'put' ? 'POST put 0' : 'PUT put-chunk 0');
    expect(requests.filter((r) => r.endsWith(' 0'))).toHaveLength(1);
    expect(allTagged(name, 'put') && allTagged(name, 'put-chunk')).toBe(true);
  });

  it('cuts a delete: the object is still there after the delay', async () => {
    const store = makeStore();
    const stored = await store.put('org/delete/request/0.bin', Buffer.from('kept'), binary);
    const name = 'p/org/delete/request/0.bin';
    const fault = gcs.faults.add({ op: 'delete', name, type: 'delay', ms: DELAY_MS });
    const { ms } = await abortWhileHeld(fault, (signal) => store.delete(stored.uri, { signal }));
    expect(ms).toBeLessThan(100);
    await sleep(DELAY_MS + 1000);
    expect(gcs.objects.get(BUCKET, name)?.data.toString()).toBe('kept');
    expect(requestsFor(name).filter((r) => r.startsWith('DELETE'))).toEqual(['DELETE delete 0']);
    expect(allTagged(name, 'delete')).toBe(true);
  });

  it('cuts a download: the server never gets to answer it', async () => {
    const store = makeStore();
    const stored = await store.put('org/get/request/0.bin', Buffer.from('bytes'), binary);
    const name = 'p/org/get/request/0.bin';
    const fault = gcs.faults.add({ op: 'get', name, type: 'delay', ms: DELAY_MS });
    const { ms } = await abortWhileHeld(fault, (signal) => store.get(stored.uri, { signal }));
    expect(ms).toBeLessThan(100);
    await sleep(DELAY_MS + 200);
    expect(requestsFor(name).filter((r) => r.startsWith('GET'))).toEqual(['GET get 0']);
    expect(allTagged(name, 'get')).toBe(true);
  });

  it('tags no request of a call without a signal', async () => {
    const store = makeStore();
    const stored = await store.put('org/untagged/request/0.bin', Buffer.from('x'), binary);
    await store.get(stored.uri);
    await store.delete(stored.uri);
    const requests = gcs.requests.filter((r) => r.name === 'p/org/untagged/request/0.bin');
    expect(requests.map((r) => r.op)).toEqual(['put', 'get', 'delete']);
    expect(requests.every((r) => r.headers[CALL_HEADER] === undefined)).toBe(true);
  });

  it('sends nothing for a delete whose signal has already aborted', async () => {
    const store = makeStore();
    const before = gcs.requests.length;
    await rejection(store.delete(`${store.baseUri}/org/x/request/0.bin`, { signal: AbortSignal.abort() }));
    expect(gcs.requests.length).toBe(before);
  });

  it('answers the URI put would answer, without a request', () => {
    const store = makeStore();
    const before = gcs.requests.length;
    expect(store.uriOf('org/job/request/0.bin')).toBe(`gs://${BUCKET}/p/org/job/request/0.bin`);
    expect(() => store.uriOf('org/../x')).toThrow(StorageError);
    expect(gcs.requests.length).toBe(before);
  });
});
