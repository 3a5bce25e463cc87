import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import { ObjectNotFoundError, StorageError } from '../../src/storage/object-store.js';

// The file store reads only regular files, and never blocks one of libuv's threads on anything
// else: a FIFO nothing writes to used to hold a thread in open() for ever, and five of them
// starved every other file operation of the process.

const binary = { contentType: 'application/octet-stream' };

describe('FilesystemObjectStore and files that are not regular files', () => {
  let parent: string;
  let root: string;
  let store: FilesystemObjectStore;
  const fifos: string[] = [];
  const servers: Server[] = [];

  const uriOf = (relative: string) => pathToFileURL(path.join(root, relative)).href;
  const mkfifo = async (relative: string) => {
    const file = path.join(root, relative);
    await mkdir(path.dirname(file), { recursive: true });
    execFileSync('mkfifo', [file]);
    fifos.push(file);
    return uriOf(relative);
  };

  beforeAll(async () => {
    parent = await mkdtemp(path.join(tmpdir(), 'fs-special-'));
    root = path.join(parent, 'objects');
    store = new FilesystemObjectStore(root);
  });
  afterEach(() => {
    // Only a regression would leave a reader blocked on a FIFO: give it a writer so that the
    // stuck thread comes back and the tests after this one are not starved too.
    for (const fifo of fifos.splice(0)) {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENXIO') throw error;
      }
    }
  });
  afterAll(async () => {
    for (const server of servers) server.close();
    await rm(parent, { recursive: true, force: true });
  });

  async function refusal(uri: string): Promise<StorageError> {
    const started = performance.now();
    const error = await store.get(uri).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).not.toBeInstanceOf(ObjectNotFoundError);
    return error as StorageError;
  }

  it('refuses a FIFO at once, without waiting for a writer', async () => {
    const uri = await mkfifo('org/fifo/request/0.bin');
    const error = await refusal(uri);
    expect(error.message).toContain('a FIFO, not a regular file');
    expect(error.uri).toBe(uri);
  });

  it('refuses a FIFO behind a symbolic link: the check is on what the link leads to', async () => {
    await mkfifo('org/link-fifo/target');
    await symlink(path.join(root, 'org/link-fifo/target'), path.join(root, 'org/link-fifo/0.bin'));
    expect((await refusal(uriOf('org/link-fifo/0.bin'))).message).toContain('a FIFO');
  });

  it('refuses a character device behind a link, which would never end (/dev/zero)', async () => {
    await mkdir(path.join(root, 'org/device'), { recursive: true });
    await symlink('/dev/zero', path.join(root, 'org/device/0.bin'));
    expect((await refusal(uriOf('org/device/0.bin'))).message).toContain('a character device');
  });

  it('refuses a UNIX socket', async () => {
    await mkdir(path.join(root, 'org/socket'), { recursive: true });
    const server = createServer();
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(path.join(root, 'org/socket/0.bin'), resolve));
    await refusal(uriOf('org/socket/0.bin'));
  });

  it('refuses a directory', async () => {
    await mkdir(path.join(root, 'org/dir/0.bin'), { recursive: true });
    expect((await refusal(uriOf('org/dir/0.bin'))).message).toContain('a directory');
  });

  it('still follows a symbolic link to a regular file, as documented', async () => {
    await mkdir(path.join(root, 'org/link'), { recursive: true });
    await writeFile(path.join(parent, 'elsewhere.bin'), 'linked');
    await symlink(path.join(parent, 'elsewhere.bin'), path.join(root, 'org/link/0.bin'));
    expect((await store.get(uriOf('org/link/0.bin'))).toString()).toBe('linked');
  });

  it('reads, writes and deletes normally while eight reads of FIFOs are refused side by side', async () => {
    const healthy = await store.put('org/busy/request/healthy.bin', Buffer.from('healthy'), binary);
    const uris = await Promise.all(Array.from({ length: 8 }, (_, i) => mkfifo(`org/busy/request/${i}.bin`)));

    const started = performance.now();
    const results = await Promise.allSettled(uris.map((uri) => store.get(uri)));
    expect(results.every((r) => r.status === 'rejected' && r.reason instanceof StorageError)).toBe(true);
    // With blocking opens, the fifth read would already have waited for a free thread for ever.
    expect((await store.get(healthy.uri)).toString()).toBe('healthy');
    const written = await store.put('org/busy/request/new.bin', Buffer.from('new'), binary);
    expect((await store.get(written.uri)).toString()).toBe('new');
    await store.delete(written.uri);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});
