import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import { MonitoredObjectStore } from '../../src/storage/monitored-store.js';
import { ObjectNotFoundError, StorageError } from '../../src/storage/object-store.js';

// The outage tracker over the real file store. A directory in place of an object is the
// StorageError at hand here; test/storage/storage-outage.test.ts has GCS outages through the app.

const binary = { contentType: 'application/octet-stream' };

describe('MonitoredObjectStore', () => {
  let dir: string;
  let inner: FilesystemObjectStore;
  let store: MonitoredObjectStore;
  let lines: { level: 'warn' | 'info'; message: string; fields: Record<string, unknown> }[];
  let broken: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'monitored-'));
    inner = new FilesystemObjectStore(dir);
    await mkdir(path.join(dir, 'org/dir'), { recursive: true });
    broken = inner.uriOf('org/dir');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));
  beforeEach(() => {
    lines = [];
    store = new MonitoredObjectStore(inner, {
      warn: (fields, message) =>
        lines.push({ level: 'warn', message, fields: fields as Record<string, unknown> }),
      info: (fields, message) =>
        lines.push({ level: 'info', message, fields: fields as Record<string, unknown> }),
    });
  });

  it('passes calls through: same base, same URIs, same objects', async () => {
    expect(store.baseUri).toBe(inner.baseUri);
    const stored = await store.put('org/a/request/0.bin', Buffer.from('x'), binary);
    expect(stored.uri).toBe(store.uriOf('org/a/request/0.bin'));
    expect((await inner.get(stored.uri)).toString()).toBe('x');
    expect((await store.get(stored.uri)).toString()).toBe('x');
    await store.delete(stored.uri);
    expect(lines).toEqual([]);
  });

  it('says once that storage is unavailable, with the reason, however many calls fail', async () => {
    for (let i = 0; i < 5; i++) await expect(store.get(broken)).rejects.toBeInstanceOf(StorageError);
    expect(store.unavailable).toBe(true);
    expect(lines).toEqual([
      {
        level: 'warn',
        message: 'object storage unavailable',
        fields: { store: inner.baseUri, reason: expect.stringContaining('a directory'), uri: broken },
      },
    ]);
  });

  it('says once that storage is back at the next success, with how long and how many calls failed', async () => {
    for (let i = 0; i < 3; i++) await expect(store.get(broken)).rejects.toBeInstanceOf(StorageError);
    const stored = await store.put('org/b/request/0.bin', Buffer.from('y'), binary);
    await store.get(stored.uri);
    expect(store.unavailable).toBe(false);
    expect(lines.map((l) => [l.level, l.message])).toEqual([
      ['warn', 'object storage unavailable'],
      ['info', 'object storage reachable again'],
    ]);
    expect(lines[1].fields).toEqual({
      store: inner.baseUri,
      unavailable_ms: expect.any(Number),
      failed_calls: 3,
    });

    // A second outage is a second line.
    await expect(store.delete(`${inner.baseUri}/..%2Fx`)).rejects.toBeInstanceOf(StorageError);
    expect(lines.map((l) => l.message)).toEqual([
      'object storage unavailable',
      'object storage reachable again',
      'object storage unavailable',
    ]);
  });

  it('takes a missing object for an answer, not an outage', async () => {
    await expect(store.get(inner.uriOf('org/missing/0.bin'))).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(store.unavailable).toBe(false);
    expect(lines).toEqual([]);
  });

  it('counts a call given up on by its signal as a failure', async () => {
    const stored = await store.put('org/c/request/0.bin', Buffer.from('z'), binary);
    await expect(store.get(stored.uri, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(StorageError);
    expect(lines.map((l) => l.message)).toEqual(['object storage unavailable']);
  });
});
