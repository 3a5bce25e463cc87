import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import { GcsObjectStore } from '../../src/storage/gcs-store.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { type FakeGcsServer, startFakeGcsServer } from './fake-gcs-server.js';

export type BackendKind = 'file' | 'gcs';

/** An object store of either kind, with a look at everything it holds. */
export interface StorageBackend {
  kind: BackendKind;
  store: ObjectStore;
  /** The URIs of every object stored, sorted (a file store's temporary files are not objects). */
  objectUris(): Promise<string[]>;
  /** The folders under a file store's base that hold nothing (none for GCS). */
  emptyFolders(): Promise<string[]>;
  /** The fake GCS server behind a `gcs` store. */
  gcs?: FakeGcsServer;
  close(): Promise<void>;
}

const BUCKET = 'jobs';

/**
 * A file store in a temporary folder, or the real GCS client against the fake GCS server
 * (bucket `jobs`, prefix `artifacts`, no retries so that a fault shows at once).
 */
export async function startStorageBackend(kind: BackendKind): Promise<StorageBackend> {
  if (kind === 'gcs') {
    const gcs = await startFakeGcsServer({ buckets: [BUCKET] });
    const store = new GcsObjectStore({
      bucket: BUCKET,
      prefix: 'artifacts',
      apiEndpoint: gcs.url,
      projectId: 'test',
      maxRetries: 0,
    });
    return {
      kind,
      store,
      gcs,
      objectUris: async () =>
        gcs.objects
          .names(BUCKET)
          .map((name) => `gs://${BUCKET}/${name}`)
          .sort(),
      emptyFolders: async () => [],
      close: () => gcs.stop(),
    };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'jobs-backend-'));
  const entries = async () => readdir(dir, { recursive: true, withFileTypes: true });
  return {
    kind,
    store: new FilesystemObjectStore(dir),
    objectUris: async () =>
      (await entries())
        .filter((e) => e.isFile() && !e.name.startsWith('.tmp-'))
        .map((e) => pathToFileURL(path.join(e.parentPath, e.name)).href)
        .sort(),
    async emptyFolders() {
      const folders = (await entries())
        .filter((e) => e.isDirectory())
        .map((e) => path.join(e.parentPath, e.name));
      const empty: string[] = [];
      for (const folder of folders) if ((await readdir(folder)).length === 0) empty.push(folder);
      return empty;
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}
