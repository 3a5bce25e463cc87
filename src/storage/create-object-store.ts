import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FilesystemObjectStore } from './filesystem-store.js';
import { GcsObjectStore } from './gcs-store.js';
import type { ObjectStore } from './object-store.js';

export interface ObjectStoreConfig {
  /** `gs://bucket[/prefix]` or `file:///absolute/dir`. */
  storageUrl: string;
  gcsApiEndpoint?: string;
  gcsProjectId?: string;
  /**
   * STORAGE_WRITE_TIMEOUT_MS: also the GCS client's timeout of each HTTP request, so that no
   * request of an upload runs on inside the library after the write was given up on.
   */
  storageWriteTimeoutMs?: number;
}

// GCS bucket naming rules, without the dotted-name and IP-address subtleties.
const BUCKET = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;

/**
 * The one place a storage URL turns into a backend. Errors start with `STORAGE_URL:` so that the
 * operator sees which setting to fix.
 */
export function createObjectStore(config: ObjectStoreConfig): ObjectStore {
  const url = config.storageUrl.trim();
  if (/[?#]/.test(url)) throw new Error(`STORAGE_URL: query strings and fragments are not supported: ${url}`);

  if (url.startsWith('gs://')) {
    const [bucket, ...rest] = url.slice('gs://'.length).split('/');
    if (!BUCKET.test(bucket)) throw new Error(`STORAGE_URL: invalid bucket name ${JSON.stringify(bucket)}`);
    const prefix = rest.filter((segment) => segment !== '').join('/');
    if (prefix.split('/').some((segment) => segment === '.' || segment === '..')) {
      throw new Error(`STORAGE_URL: the prefix must not hold . or .. segments: ${url}`);
    }
    return new GcsObjectStore({
      bucket,
      prefix,
      apiEndpoint: config.gcsApiEndpoint,
      projectId: config.gcsProjectId,
      requestTimeoutMs: config.storageWriteTimeoutMs,
    });
  }

  if (url.startsWith('file://')) {
    const directory = directoryOf(url);
    if (path.dirname(directory) === directory) {
      throw new Error(`STORAGE_URL: refusing to keep objects in the filesystem root: ${url}`);
    }
    return new FilesystemObjectStore(directory);
  }

  throw new Error(`STORAGE_URL: expected gs://bucket[/prefix] or file:///absolute/dir, got ${url}`);
}

function directoryOf(url: string): string {
  const rest = url.slice('file://'.length);
  // `file:///dir` and `file://localhost/dir` are proper file URLs. Anything else after `file://`
  // (`file://.data/artifacts`) is read as a path relative to the working directory, which is what
  // whoever wrote it meant; a URL parser would take its first segment for a host name.
  if (rest.startsWith('/') || rest.startsWith('localhost/')) {
    try {
      return fileURLToPath(url);
    } catch (error) {
      throw new Error(`STORAGE_URL: not a usable file URL: ${url}`, { cause: error });
    }
  }
  if (rest === '') throw new Error('STORAGE_URL: file:// needs a directory');
  try {
    return path.resolve(decodeURIComponent(rest));
  } catch (error) {
    throw new Error(`STORAGE_URL: not a usable file URL: ${url}`, { cause: error });
  }
}
