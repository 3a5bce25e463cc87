import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';

// The file store removes the folders a delete empties, up to its base, and a put into a folder
// that a delete removes at the same moment still succeeds.

const binary = { contentType: 'application/octet-stream' };
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

describe('FilesystemObjectStore folders', () => {
  let parent: string;
  let root: string;
  let store: FilesystemObjectStore;

  beforeAll(async () => {
    parent = await mkdtemp(path.join(tmpdir(), 'fs-folders-'));
    root = path.join(parent, 'objects');
    store = new FilesystemObjectStore(root);
  });
  afterAll(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it('removes the folders a delete leaves empty, up to but not including the base', async () => {
    const a = await store.put('org/job/lease/report/response/0.bin', Buffer.from('a'), binary);
    const b = await store.put('org/job/request/0.bin', Buffer.from('b'), binary);

    await store.delete(a.uri);
    // `org/job` still holds request/, so the climb stops below it.
    expect(await exists(path.join(root, 'org/job/lease'))).toBe(false);
    expect(await readdir(path.join(root, 'org/job'))).toEqual(['request']);

    await store.delete(b.uri);
    expect(await exists(path.join(root, 'org'))).toBe(false);
    expect(await readdir(root)).toEqual([]);
  });

  it('keeps a folder that holds something else than objects', async () => {
    const a = await store.put('keep/job/request/0.bin', Buffer.from('a'), binary);
    await writeFile(path.join(root, 'keep/job/notes.txt'), 'not an object');
    await store.delete(a.uri);
    expect(await readdir(path.join(root, 'keep/job'))).toEqual(['notes.txt']);
  });

  it('removes empty folders on the delete of an object that is not there', async () => {
    await mkdir(path.join(root, 'never/job/request'), { recursive: true });
    await store.delete(store.uriOf('never/job/request/0.bin'));
    expect(await exists(path.join(root, 'never'))).toBe(false);
  });

  it('never removes the base folder, nor anything above it', async () => {
    const a = await store.put('only.bin', Buffer.from('a'), binary);
    await store.delete(a.uri);
    expect(await exists(root)).toBe(true);
    expect(await exists(parent)).toBe(true);
  });

  it('lets a put into a folder that a delete empties at the same moment succeed', async () => {
    // Each round: the only object of a folder is deleted while another is put into the same
    // folder. The delete may remove the folder between the put's mkdir and its open: the put
    // then makes it again.
    const ROUNDS = 400;
    const rounds = Array.from({ length: ROUNDS }, (_, i) => `race/${i}/deep/response`);
    const old = await Promise.all(
      rounds.map((folder) => store.put(`${folder}/old.bin`, Buffer.from('old'), binary)),
    );
    const results = await Promise.allSettled(
      rounds.flatMap((folder, i) => [
        store.delete(old[i].uri),
        store.put(`${folder}/new.bin`, Buffer.from(`new ${i}`), binary),
      ]),
    );
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    for (const [i, folder] of rounds.entries()) {
      expect(await readdir(path.join(root, folder))).toEqual(['new.bin']);
      expect(await readFile(path.join(root, folder, 'new.bin'), 'utf8')).toBe(`new ${i}`);
    }
  });

  it('lets puts and deletes of many objects in one folder run at once, leaving the folder as the last one left it', async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `busy/job/response/${i}.bin`);
    for (let round = 0; round < 5; round++) {
      const written = await Promise.all(keys.map((key) => store.put(key, Buffer.from(key), binary)));
      const results = await Promise.allSettled([
        ...written.map((o) => store.delete(o.uri)),
        ...keys.map((key) => store.put(`${key}.again`, Buffer.from(key), binary)),
      ]);
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      expect((await readdir(path.join(root, 'busy/job/response'))).sort()).toEqual(
        keys.map((key) => path.basename(`${key}.again`)).sort(),
      );
      await Promise.all(keys.map((key) => store.delete(store.uriOf(`${key}.again`))));
      expect(await exists(path.join(root, 'busy'))).toBe(false);
    }
  });
});
