import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createObjectStore } from '../../src/storage/create-object-store.js';
import { StorageError } from '../../src/storage/object-store.js';
import { type FakeGcsServer, startFakeGcsServer } from '../support/fake-gcs-server.js';

// STORAGE_WRITE_TIMEOUT_MS is also the GCS client's own timeout of each request: an upload the
// server holds does not run on inside the library past it, even for a caller that passes no
// signal (the offload passes one; the library's timeout is the second line).

const WRITE_TIMEOUT_MS = 300;
const HOLD_MS = 8000;

describe('the GCS store of STORAGE_URL', () => {
  let gcs: FakeGcsServer;
  beforeAll(async () => {
    gcs = await startFakeGcsServer({ buckets: ['jobs'] });
  });
  afterAll(() => gcs.stop());

  it('ends an upload the server holds at STORAGE_WRITE_TIMEOUT_MS, without a signal from the caller', async () => {
    const store = createObjectStore({
      storageUrl: 'gs://jobs/artifacts',
      gcsApiEndpoint: gcs.url,
      gcsProjectId: 'test',
      storageWriteTimeoutMs: WRITE_TIMEOUT_MS,
    });
    const name = 'artifacts/org/job/request/0.bin';
    const hold = gcs.faults.add({ op: 'put', name, type: 'delay', ms: HOLD_MS });
    const started = performance.now();
    const error = await store
      .put('org/job/request/0.bin', Buffer.from('bytes'), { contentType: 'application/octet-stream' })
      .catch((e: unknown) => e);
    const ms = performance.now() - started;
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).message).toMatch(/network timeout/);
    expect(ms).toBeGreaterThanOrEqual(WRITE_TIMEOUT_MS - 20);
    expect(ms).toBeLessThan(HOLD_MS / 4);
    // The client hung up: the server's wait ended with the connection, and nothing was stored.
    expect(hold.hits).toBe(1);
    expect(gcs.requests.filter((r) => r.name === name).map((r) => `${r.op} ${r.status}`)).toEqual(['put 0']);
    expect(gcs.objects.get('jobs', name)).toBeUndefined();
    await store.close?.();
  });
});
