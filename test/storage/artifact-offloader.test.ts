import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OffloadError, offloadDocument } from '../../src/storage/artifact-offloader.js';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import { ObjectNotFoundError, StorageError } from '../../src/storage/object-store.js';

let dir: string;
let store: FilesystemObjectStore;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'offloader-'));
  store = new FilesystemObjectStore(dir);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const settings = {
  offloadThresholdBytes: 100,
  inlineDocumentLimitBytes: 1_000_000,
  offloadConcurrency: 2,
  storageWriteTimeoutMs: 10_000,
};
const offload = (document: unknown) =>
  offloadDocument(store, document, { keyPrefix: `org/${Math.random()}`, role: 'request', settings });

describe('OFFLOAD_THRESHOLD_BYTES', () => {
  const payload = 'QUJD'.repeat(15);

  it('counts a data URL in bytes, not characters', async () => {
    // 99 characters, 109 bytes in UTF-8: the ten é take two bytes each.
    const url = `data:text/plain;name=${'é'.repeat(10)};base64,${payload}`;
    expect([url.length, Buffer.byteLength(url)]).toEqual([99, 109]);
    const { artifacts } = await offload({ document: { url } });
    expect(artifacts.map((a) => a.pointer)).toEqual(['/document/url']);
  });

  it('keeps a data URL of exactly the threshold inline', async () => {
    const url = `data:text/plain;name=${'e'.repeat(11)};base64,${payload}`;
    expect(Buffer.byteLength(url)).toBe(100);
    const { artifacts, stored } = await offload({ document: { url } });
    expect(artifacts).toEqual([]);
    expect(stored).toEqual({ document: { url } });
  });
});

describe('the writes announced before the first one starts', () => {
  const image = (seed: number) => `data:image/png;base64,${Buffer.alloc(200, seed).toString('base64')}`;

  it('names every URI, the whole document included, and the longest the writes can take', async () => {
    const calls: { uris: string[]; maxDurationMs: number }[] = [];
    const keyPrefix = `org/${Math.random()}`;
    const result = await offloadDocument(
      store,
      { pages: [1, 2, 3].map((seed) => ({ image: image(seed) })), notes: 'n'.repeat(600) },
      {
        keyPrefix,
        role: 'request',
        settings: { ...settings, inlineDocumentLimitBytes: 500 },
        beforeWrites: async (planned) => {
          calls.push(planned);
          return { writeBy: Number.POSITIVE_INFINITY };
        },
      },
    );
    expect(calls).toHaveLength(1);
    expect(calls[0].uris).toEqual([
      store.uriOf(`${keyPrefix}/request/0.bin`),
      store.uriOf(`${keyPrefix}/request/1.bin`),
      store.uriOf(`${keyPrefix}/request/2.bin`),
      store.uriOf(`${keyPrefix}/request/document.json`),
    ]);
    // Three data URLs two at a time (OFFLOAD_CONCURRENCY), then the document: three rounds.
    expect(calls[0].maxDurationMs).toBe(3 * settings.storageWriteTimeoutMs);
    expect(result.artifacts.map((a) => a.storageUri).sort()).toEqual([...calls[0].uris].sort());
    expect(result.stored).toBe(store.uriOf(`${keyPrefix}/request/document.json`));
  });

  it('is not called when nothing is offloaded', async () => {
    let called = false;
    const result = await offloadDocument(
      store,
      { url: 'https://x.test/a.pdf' },
      {
        keyPrefix: 'org/none',
        role: 'request',
        settings,
        beforeWrites: async () => {
          called = true;
          return { writeBy: Number.POSITIVE_INFINITY };
        },
      },
    );
    expect(called).toBe(false);
    expect(result).toEqual({ stored: { url: 'https://x.test/a.pdf' }, artifacts: [] });
  });

  it('writes nothing when the announcement fails', async () => {
    const keyPrefix = `org/${Math.random()}`;
    await expect(
      offloadDocument(
        store,
        { image: image(4) },
        {
          keyPrefix,
          role: 'request',
          settings,
          beforeWrites: async () => {
            throw new Error('database down');
          },
        },
      ),
    ).rejects.toThrow('database down');
    await expect(store.get(store.uriOf(`${keyPrefix}/request/0.bin`))).rejects.toBeInstanceOf(
      ObjectNotFoundError,
    );
  });

  it('starts no write that could not end by the deadline the announcement answered', async () => {
    const keyPrefix = `org/${Math.random()}`;
    const error = await offloadDocument(
      store,
      { image: image(5) },
      {
        keyPrefix,
        role: 'request',
        settings,
        beforeWrites: async () => ({ writeBy: performance.now() + settings.storageWriteTimeoutMs - 1000 }),
      },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OffloadError);
    const offload = error as OffloadError;
    expect(offload.cause).toBeInstanceOf(StorageError);
    expect((offload.cause as Error).message).toMatch(/could not end before the offload's deadline/);
    expect([offload.written, offload.cut, offload.failed]).toEqual([[], [], []]);
    await expect(store.get(store.uriOf(`${keyPrefix}/request/0.bin`))).rejects.toBeInstanceOf(
      ObjectNotFoundError,
    );
  });
});
