import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OffloadError, offloadDocument } from '../../src/storage/artifact-offloader.js';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import { type ObjectStore, StorageError } from '../../src/storage/object-store.js';
import { dataUrl } from '../support/job-factory.js';

// STORAGE_WRITE_TIMEOUT_MS in the offload, over the real file store with some puts held back.

const TIMEOUT_MS = 200;
const settings = {
  offloadThresholdBytes: 100,
  inlineDocumentLimitBytes: 1_000_000,
  offloadConcurrency: 4,
  storageWriteTimeoutMs: TIMEOUT_MS,
};

let dir: string;
let inner: FilesystemObjectStore;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'offload-timeout-'));
  inner = new FilesystemObjectStore(dir);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The file store, except that puts of keys ending in `suffix` never answer; their signals are kept. */
function holding(suffix: string) {
  const signals: AbortSignal[] = [];
  const store: ObjectStore = {
    baseUri: inner.baseUri,
    uriOf: (key) => inner.uriOf(key),
    put: (key, bytes, options) => {
      if (!key.endsWith(suffix)) return inner.put(key, bytes, options);
      if (options.signal) signals.push(options.signal);
      return new Promise(() => {});
    },
    get: (uri, options) => inner.get(uri, options),
    delete: (uri, options) => inner.delete(uri, options),
  };
  return { store, signals };
}

const document = () => ({
  pages: [0, 1, 2].map((i) => ({ image: dataUrl(300 + i, 'image/png', i + 1).url })),
});

describe('an offload with STORAGE_WRITE_TIMEOUT_MS', () => {
  it('fails at the timeout when one write never answers, aborting its signal and naming it as cut', async () => {
    const { store, signals } = holding('/1.bin');
    const started = performance.now();
    const error = await offloadDocument(store, document(), {
      keyPrefix: 'org/job1',
      role: 'request',
      settings,
    }).catch((e: unknown) => e);
    const ms = performance.now() - started;

    expect(error).toBeInstanceOf(OffloadError);
    const offload = error as OffloadError;
    expect(offload.cause).toBeInstanceOf(StorageError);
    expect((offload.cause as StorageError).message).toBe(
      `writing ${inner.uriOf('org/job1/request/1.bin')} timed out after ${TIMEOUT_MS} ms`,
    );
    expect(offload.cut).toEqual([{ storageUri: inner.uriOf('org/job1/request/1.bin') }]);
    expect(offload.written.map((a) => a.pointer).sort()).toEqual(['/pages/0/image', '/pages/2/image']);
    expect(signals).toHaveLength(1);
    expect(signals[0].aborted).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
    expect(ms).toBeLessThan(TIMEOUT_MS + 500);
  });

  it('gives the whole-document write the same limit', async () => {
    const { store } = holding('/document.json');
    const error = await offloadDocument(
      store,
      { ...document(), notes: 'n'.repeat(500) },
      { keyPrefix: 'org/job2', role: 'request', settings: { ...settings, inlineDocumentLimitBytes: 200 } },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OffloadError);
    expect((error as OffloadError).cut).toEqual([
      { storageUri: inner.uriOf('org/job2/request/document.json') },
    ]);
    expect((error as OffloadError).written).toHaveLength(3);
  });

  it('cuts nothing when every write answers in time', async () => {
    const { store, signals } = holding('never');
    const result = await offloadDocument(store, document(), {
      keyPrefix: 'org/job3',
      role: 'request',
      settings,
    });
    expect(result.artifacts).toHaveLength(3);
    expect(signals).toEqual([]);
  });
});
