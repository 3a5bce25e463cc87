import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdtemp, rm, truncate } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ArtifactRecord } from '../../src/domain/artifacts.js';
import { offloadDocument } from '../../src/storage/artifact-offloader.js';
import { restoreDocument } from '../../src/storage/artifact-restorer.js';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import { decodePointer, encodePointer, setAtPointer } from '../../src/storage/json-pointer.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { dataUrl } from '../support/job-factory.js';

describe('JSON pointers', () => {
  it('escapes ~ and / in segments and reads them back', () => {
    const segments = ['a/b', 'c~d', '~1', '', 0, 'plain'];
    const pointer = encodePointer(segments);
    expect(pointer).toBe('/a~1b/c~0d/~01//0/plain');
    expect(decodePointer(pointer)).toEqual(['a/b', 'c~d', '~1', '', '0', 'plain']);
  });

  it("decodes '' as the whole document and refuses a pointer without a leading slash", () => {
    expect(encodePointer([])).toBe('');
    expect(decodePointer('')).toEqual([]);
    expect(() => decodePointer('a/b')).toThrow("invalid JSON pointer 'a/b'");
  });

  it("replaces the root for '' and sets values in objects and arrays in place", () => {
    expect(setAtPointer({ a: 1 }, '', 'new')).toEqual({ root: 'new' });
    const document = { 'a/b': { list: ['x', 'y'] }, 'c~d': 1 };
    expect(setAtPointer(document, '/a~1b/list/1', null)?.root).toBe(document);
    expect(setAtPointer(document, '/c~0d', 2)?.root).toBe(document);
    expect(document).toEqual({ 'a/b': { list: ['x', null] }, 'c~d': 2 });
  });

  it('answers undefined, changing nothing, when the parent is missing or the index is out of range', () => {
    const document = { list: ['x'], text: 'abc', nothing: null };
    const before = structuredClone(document);
    for (const pointer of ['/missing/url', '/list/1', '/list/-1', '/list/first', '/text/0', '/nothing/url']) {
      expect(setAtPointer(document, pointer, 'v'), pointer).toBeUndefined();
    }
    expect(document).toEqual(before);
  });
});

describe('restoreDocument', () => {
  let dir: string;
  let store: FilesystemObjectStore;
  const fifos: string[] = [];
  const options = { concurrency: 4, timeoutMs: 2000 };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'restorer-'));
    store = new FilesystemObjectStore(dir);
  });
  afterEach(() => {
    // Were a read blocked in open() on a FIFO (it must not be), a writer would let it end.
    for (const fifo of fifos.splice(0)) {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENXIO') throw error;
      }
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  let job = 0;
  /** Offloads a copy of `document` the way job creation does, under a job of its own. */
  const offload = async (document: unknown, documentLimit = 1_000_000) => {
    const result = await offloadDocument(store, structuredClone(document), {
      keyPrefix: `org/job${job++}`,
      role: 'request',
      settings: {
        offloadThresholdBytes: 100,
        inlineDocumentLimitBytes: documentLimit,
        offloadConcurrency: 4,
        storageWriteTimeoutMs: 10_000,
      },
    });
    const byPointer = (pointer: string) =>
      result.artifacts.find((a) => a.pointer === pointer) as ArtifactRecord;
    return { ...result, byPointer };
  };

  const mixed = () => ({
    'a/b': { 'c~d': dataUrl(300, 'application/pdf', 1).url },
    pages: [
      { image: dataUrl(400, 'image/png', 2).url, text: 'short' },
      { image: dataUrl(500, 'text/plain;charset=utf-8', 3).url },
    ],
    small: 'data:text/plain;base64,aGk=',
    notes: 'n'.repeat(300),
  });

  it('returns the document as it is, without warnings, when nothing was offloaded', async () => {
    const document = { a: 1 };
    expect(await restoreDocument(store, document, [], options)).toEqual({ document, warnings: [] });
  });

  it('restores byte-for-byte, with escaped pointers and MIME types that carry parameters', async () => {
    const document = mixed();
    const { stored, artifacts } = await offload(document);
    expect(artifacts.map((a) => a.pointer).sort()).toEqual([
      '/a~1b/c~0d',
      '/pages/0/image',
      '/pages/1/image',
    ]);
    expect(await restoreDocument(store, stored, artifacts, options)).toEqual({ document, warnings: [] });
  });

  it('restores a whole offloaded document before the values inside it, whatever the order given', async () => {
    const document = mixed();
    const { stored, artifacts } = await offload(document, 500);
    expect(artifacts.map((a) => a.pointer)).toContain('');
    expect(typeof stored).toBe('string');
    for (const order of [artifacts, [...artifacts].reverse()]) {
      expect(await restoreDocument(store, stored, order, options)).toEqual({ document, warnings: [] });
    }
  });

  it('rebuilds a data URL with the MIME type of its record', async () => {
    const { stored, byPointer } = await offload({ file: dataUrl(200, 'image/png', 4).url });
    const artifact = { ...byPointer('/file'), contentType: 'image/webp' };
    const { document } = await restoreDocument(store, stored, [artifact], options);
    expect((document as { file: string }).file).toMatch(/^data:image\/webp;base64,/);
  });

  it('says size_mismatch, not checksum_mismatch, for a truncated object', async () => {
    const { stored, byPointer } = await offload({ file: dataUrl(200, 'image/png', 5).url });
    await truncate(fileURLToPath(byPointer('/file').storageUri), 10);
    const { document, warnings } = await restoreDocument(store, stored, [byPointer('/file')], options);
    expect(document).toEqual({ file: null });
    expect(warnings.map((w) => w.details.reason)).toEqual(['size_mismatch']);
  });

  it('says invalid_content for a whole document whose bytes match their record but are not JSON', async () => {
    const bytes = Buffer.from('{"truncated": ');
    const object = await store.put('org/bad/request/document.json', bytes, {
      contentType: 'application/json',
    });
    const artifact: ArtifactRecord = {
      role: 'request',
      pointer: '',
      kind: 'json',
      storageUri: object.uri,
      byteSize: object.byteSize,
      sha256: object.sha256,
      contentType: 'application/json',
    };
    const { document, warnings } = await restoreDocument(store, object.uri, [artifact], options);
    expect(document).toBeNull();
    expect(warnings).toEqual([
      {
        code: 'artifact_restore_failed',
        message: 'Could not restore the whole request: the object does not hold valid JSON.',
        details: { pointer: '', reason: 'invalid_content', role: 'request', storage_uri: object.uri },
      },
    ]);
  });

  it('gives one warning for a failed whole document, none for the values inside it', async () => {
    const { stored, artifacts, byPointer } = await offload(mixed(), 500);
    await store.delete(byPointer('').storageUri);
    await store.delete(byPointer('/pages/0/image').storageUri);
    const { document, warnings } = await restoreDocument(store, stored, artifacts, options);
    expect(document).toBeNull();
    expect(warnings).toEqual([
      {
        code: 'artifact_restore_failed',
        message: 'Could not restore the whole request: the object does not exist in storage.',
        details: { pointer: '', reason: 'not_found', role: 'request', storage_uri: byPointer('').storageUri },
      },
    ]);
  });

  it('nulls a failed value inside a restored whole document', async () => {
    const original = mixed();
    const { stored, artifacts, byPointer } = await offload(original, 500);
    await store.delete(byPointer('/pages/1/image').storageUri);
    const { document, warnings } = await restoreDocument(store, stored, artifacts, options);
    original.pages[1].image = null as unknown as string;
    expect(document).toEqual(original);
    expect(warnings.map((w) => [w.details.pointer, w.details.reason])).toEqual([
      ['/pages/1/image', 'not_found'],
    ]);
    expect(warnings[0].message).toBe(
      "Could not restore the request value at '/pages/1/image': the object does not exist in storage.",
    );
  });

  it('times out a read that ignores its abort signal and still restores the others', async () => {
    const original = { a: dataUrl(200, 'image/png', 6).url, b: dataUrl(200, 'image/png', 7).url };
    const { stored, artifacts, byPointer } = await offload(original);
    // A read stuck where no signal reaches it (a hung network mount): it never settles at all.
    const stuck = byPointer('/a').storageUri;
    const hanging: ObjectStore = {
      baseUri: store.baseUri,
      uriOf: (key) => store.uriOf(key),
      put: (...args) => store.put(...args),
      get: (uri, options) => (uri === stuck ? new Promise<Buffer>(() => {}) : store.get(uri, options)),
      delete: (uri) => store.delete(uri),
    };

    const started = performance.now();
    const { document, warnings } = await restoreDocument(hanging, stored, artifacts, {
      concurrency: 2,
      timeoutMs: 150,
    });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(document).toEqual({ a: null, b: original.b });
    expect(warnings.map((w) => [w.details.pointer, w.details.reason])).toEqual([['/a', 'timeout']]);
  });

  it('says storage_error at once, not timeout, for a FIFO in place of an object', async () => {
    const original = { a: dataUrl(200, 'image/png', 8).url, b: dataUrl(200, 'image/png', 9).url };
    const { stored, artifacts, byPointer } = await offload(original);
    // Opening a FIFO nobody writes to used to block a libuv thread until the restore timed out.
    const fifo = fileURLToPath(byPointer('/a').storageUri);
    await rm(fifo);
    execFileSync('mkfifo', [fifo]);
    fifos.push(fifo);

    const started = performance.now();
    const { document, warnings } = await restoreDocument(store, stored, artifacts, options);
    expect(performance.now() - started).toBeLessThan(options.timeoutMs / 2);
    expect(document).toEqual({ a: null, b: original.b });
    expect(warnings.map((w) => [w.details.pointer, w.details.reason])).toEqual([['/a', 'storage_error']]);
  });
});
