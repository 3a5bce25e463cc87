import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import { ObjectNotFoundError, StorageError } from '../../src/storage/object-store.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const binary = { contentType: 'application/octet-stream' };

describe('FilesystemObjectStore', () => {
  let parent: string;
  let root: string;
  let store: FilesystemObjectStore;

  beforeAll(async () => {
    parent = await mkdtemp(path.join(tmpdir(), 'fs-store-'));
    root = path.join(parent, 'objects');
    store = new FilesystemObjectStore(root);
    // A file next to the base that no URI may reach.
    await writeFile(path.join(parent, 'secret.txt'), 'not yours');
  });

  afterAll(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it('has a file:// base URI for its directory', () => {
    expect(store.baseUri).toBe(pathToFileURL(root).href);
    expect(new FilesystemObjectStore(`${root}/`).baseUri).toBe(store.baseUri);
  });

  it('refuses a relative directory', () => {
    expect(() => new FilesystemObjectStore('relative/dir')).toThrow(/absolute/);
  });

  it('puts and gets binary data, reporting size and sha256', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 11);
    const stored = await store.put('org1/job1/input/0.bin', bytes, binary);
    expect(stored).toEqual({
      uri: `${store.baseUri}/org1/job1/input/0.bin`,
      byteSize: bytes.length,
      sha256: sha256(bytes),
    });
    expect((await store.get(stored.uri)).equals(bytes)).toBe(true);
    expect((await readFile(path.join(root, 'org1/job1/input/0.bin'))).equals(bytes)).toBe(true);
  });

  it('stores an empty object', async () => {
    const stored = await store.put('org1/job1/input/empty', Buffer.alloc(0), binary);
    expect(stored.byteSize).toBe(0);
    expect(stored.sha256).toBe(sha256(Buffer.alloc(0)));
    expect((await store.get(stored.uri)).length).toBe(0);
  });

  it('overwrites an object and leaves no temporary files behind', async () => {
    await store.put('org1/job2/output/doc.json', Buffer.from('{"v":1}'), { contentType: 'application/json' });
    const stored = await store.put('org1/job2/output/doc.json', Buffer.from('{"v":2}'), {
      contentType: 'application/json',
    });
    expect((await store.get(stored.uri)).toString()).toBe('{"v":2}');
    expect(await readdir(path.join(root, 'org1/job2/output'))).toEqual(['doc.json']);
  });

  it('round-trips names that need escaping in a URL', async () => {
    const stored = await store.put('org1/job3/input/a file #1 %20 ü.bin', Buffer.from('x'), binary);
    expect(stored.uri).toBe(pathToFileURL(path.join(root, 'org1/job3/input/a file #1 %20 ü.bin')).href);
    expect((await store.get(stored.uri)).toString()).toBe('x');
    await store.delete(stored.uri);
    await expect(store.get(stored.uri)).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('answers ObjectNotFoundError for a missing object', async () => {
    const uri = `${store.baseUri}/org1/nope/input/0.bin`;
    const error = await store.get(uri).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ObjectNotFoundError);
    expect((error as ObjectNotFoundError).uri).toBe(uri);
  });

  it('answers ObjectNotFoundError when a parent of the path is a file', async () => {
    const stored = await store.put('org1/job4/input/file', Buffer.from('x'), binary);
    await expect(store.get(`${stored.uri}/child`)).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('answers StorageError, not not-found, for a directory', async () => {
    const error = await store.get(`${store.baseUri}/org1/job1`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).not.toBeInstanceOf(ObjectNotFoundError);
  });

  it('deletes idempotently', async () => {
    const stored = await store.put('org1/job5/input/0.bin', Buffer.from('x'), binary);
    await store.delete(stored.uri);
    await expect(store.get(stored.uri)).rejects.toBeInstanceOf(ObjectNotFoundError);
    await store.delete(stored.uri);
    await store.delete(`${store.baseUri}/org1/never/existed/at-all`);
  });

  it.each([
    '',
    '/abs/olute',
    'org1//job/x',
    'org1/job/x/',
    'org1/../../secret.txt',
    '../secret.txt',
    'org1/./x',
    'org1/job\\x',
    'org1/job\0x',
  ])('refuses to put under the key %j', async (key) => {
    await expect(store.put(key, Buffer.from('x'), binary)).rejects.toBeInstanceOf(StorageError);
    expect(await readFile(path.join(parent, 'secret.txt'), 'utf8')).toBe('not yours');
  });

  it.each([
    ['a URI of another directory', () => pathToFileURL(path.join(parent, 'secret.txt')).href],
    ['a URI of a sibling with the same prefix', () => `${store.baseUri}-other/secret.txt`],
    ['a URI climbing out with ..', () => `${store.baseUri}/../secret.txt`],
    ['a URI climbing out with encoded dots', () => `${store.baseUri}/%2e%2e/secret.txt`],
    ['a URI climbing out with an encoded slash', () => `${store.baseUri}/..%2Fsecret.txt`],
    ['a URI with an empty segment', () => `${store.baseUri}//org1/job1/input/0.bin`],
    ['the base itself', () => store.baseUri],
    ['a URI with bad percent-encoding', () => `${store.baseUri}/org1/%zz`],
    ['a URI with a query', () => `${store.baseUri}/org1/job1/input/0.bin?x=1`],
    ['a gs:// URI', () => 'gs://bucket/org1/job1/input/0.bin'],
    ['a file://localhost URI', () => store.baseUri.replace('file://', 'file://localhost')],
  ])('refuses to read or delete %s', async (_, uri) => {
    for (const attempt of [() => store.get(uri()), () => store.delete(uri())]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect(error).not.toBeInstanceOf(ObjectNotFoundError);
    }
    expect(await readFile(path.join(parent, 'secret.txt'), 'utf8')).toBe('not yours');
  });

  it('honours an aborted signal on get and put', async () => {
    const stored = await store.put('org1/job6/input/0.bin', Buffer.from('x'), binary);
    const signal = AbortSignal.abort();
    await expect(store.get(stored.uri, { signal })).rejects.toBeInstanceOf(StorageError);
    await expect(
      store.put('org1/job6/input/1.bin', Buffer.from('y'), { ...binary, signal }),
    ).rejects.toBeInstanceOf(StorageError);
    await expect(store.get(`${store.baseUri}/org1/job6/input/1.bin`)).rejects.toBeInstanceOf(
      ObjectNotFoundError,
    );
    expect(await readdir(path.join(root, 'org1/job6/input'))).toEqual(['0.bin']);
  });

  it('reports a write failure as StorageError and cleans up', async () => {
    // A directory where the object should go: the rename fails.
    await mkdir(path.join(root, 'org1/job7/input/0.bin'), { recursive: true });
    await expect(store.put('org1/job7/input/0.bin', Buffer.from('x'), binary)).rejects.toBeInstanceOf(
      StorageError,
    );
    expect(await readdir(path.join(root, 'org1/job7/input'))).toEqual(['0.bin']);
  });
});
