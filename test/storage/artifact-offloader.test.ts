import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offloadDocument } from '../../src/storage/artifact-offloader.js';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';

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
