import { createHash } from 'node:crypto';
import { addAbortSignal } from 'node:stream';
import { type Bucket, type File, IdempotencyStrategy, Storage } from '@google-cloud/storage';
import { withAbortableRequests } from './abortable-requests.js';
import { ObjectNotFoundError, type ObjectStore, StorageError, type StoredObject } from './object-store.js';

export interface GcsObjectStoreOptions {
  bucket: string;
  /** Folder inside the bucket, without leading or trailing slash; empty or absent: the bucket root. */
  prefix?: string;
  /** JSON API endpoint override (an emulator, a regional or private endpoint). */
  apiEndpoint?: string;
  projectId?: string;
  /** Retries of one request after a 408/429/5xx or a dropped connection. Default 2; 0 disables. */
  maxRetries?: number;
  /**
   * Cap on the wait between retries. Default 2000; at least 1000, because the client's upload
   * retry loop has a fixed 1 s minimum wait and throws when this cap is below it.
   */
  maxRetryDelayMs?: number;
  /** No retry starts after this long since the first attempt. Default 30000. */
  totalTimeoutMs?: number;
  /** Timeout of each HTTP request, and the longest a download may go without receiving a byte. Default 60000. */
  requestTimeoutMs?: number;
  /** Objects larger than this go through a resumable upload. Default 8 MiB. */
  resumableThresholdBytes?: number;
  /** Bytes per request of a resumable upload; GCS wants a multiple of 256 KiB. Default 8 MiB. */
  resumableChunkBytes?: number;
}

const MiB = 1024 * 1024;

/** What a request interceptor of the client answers. */
type Decorated = ReturnType<File['interceptors'][number]['request']>;

/**
 * Objects in one bucket under one prefix, through `@google-cloud/storage`. URIs are
 * `gs://bucket/prefix/key`, unencoded, as `gsutil` prints them.
 *
 * Retries are the client's, kept short: the caller (artifact restore/offload) has its own
 * per-artifact timeout, and a retry loop that outlives it would only hold sockets.
 *
 * Abort: every call rejects at once when its signal fires, and the HTTP requests it started are
 * destroyed (`abortable-requests.ts`), uploads included, multipart or resumable, although the
 * client itself cannot cancel them: the server sees the connection close, and a later retry of
 * the client is cut before it sends anything. A server that had the whole upload before the cut
 * may still have stored it: whoever gives up on a put deletes its key later
 * (`offloaded-write.ts`).
 *
 * Leave `STORAGE_EMULATOR_HOST` unset: when present, the 7.x client sends JSON API requests to it
 * whatever `apiEndpoint` says, with paths that miss `/storage/v1`.
 */
export class GcsObjectStore implements ObjectStore {
  readonly baseUri: string;
  readonly #bucketName: string;
  readonly #prefix: string;
  readonly #bucket: Bucket;
  readonly #resumableThreshold: number;
  readonly #chunkBytes: number;
  readonly #requestTimeoutMs: number;

  constructor(options: GcsObjectStoreOptions) {
    this.#bucketName = options.bucket;
    this.#prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.baseUri = `gs://${this.#bucketName}${this.#prefix ? `/${this.#prefix}` : ''}`;
    this.#resumableThreshold = options.resumableThresholdBytes ?? 8 * MiB;
    this.#chunkBytes = options.resumableChunkBytes ?? 8 * MiB;
    if (this.#chunkBytes % (256 * 1024) !== 0) {
      throw new Error('resumableChunkBytes must be a multiple of 256 KiB');
    }
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
    const maxRetries = options.maxRetries ?? 2;
    const maxRetryDelayMs = options.maxRetryDelayMs ?? 2000;
    if (maxRetryDelayMs < 1000) throw new Error('maxRetryDelayMs must be at least 1000');
    const storage = new Storage({
      projectId: options.projectId,
      apiEndpoint: options.apiEndpoint,
      // With apiEndpoint set the client sends no credentials at all unless told to, which is
      // right for an emulator and wrong for a Google endpoint (regional, private service connect).
      useAuthWithCustomEndpoint: options.apiEndpoint ? isGoogleEndpoint(options.apiEndpoint) : undefined,
      timeout: this.#requestTimeoutMs,
      retryOptions: {
        // The client reads `maxRetries: 0` as "use the default (3)": switch retrying off instead.
        autoRetry: maxRetries > 0,
        maxRetries: Math.max(maxRetries, 1),
        retryDelayMultiplier: 2,
        // The client counts these in seconds.
        maxRetryDelay: maxRetryDelayMs / 1000,
        totalTimeout: (options.totalTimeoutMs ?? 30_000) / 1000,
        // By default uploads and deletes without a generation precondition are never retried,
        // and the client gets there by switching `autoRetry` off on the shared Storage object;
        // after a simple upload it stays off, so no later download is retried either (7.22).
        // Rewriting the same bytes under the same key, or deleting twice, is harmless here.
        idempotencyStrategy: IdempotencyStrategy.RetryAlways,
      },
    });
    this.#bucket = storage.bucket(this.#bucketName);
  }

  async put(
    key: string,
    bytes: Buffer,
    options: { contentType: string; signal?: AbortSignal },
  ): Promise<StoredObject> {
    const name = this.#nameOfKey(key);
    const uri = `gs://${this.#bucketName}/${name}`;
    const resumable = bytes.length > this.#resumableThreshold;
    try {
      options.signal?.throwIfAborted();
      const upload = withAbortableRequests(options.signal, (headers) =>
        this.#file(name, headers).save(bytes, {
          resumable,
          contentType: options.contentType,
          // The client compares its CRC32C with the one the server answers; on a mismatch it
          // deletes the object and throws.
          validation: 'crc32c',
          // In chunks, a failed request resumes from what the server has; the size up front lets
          // the server know which request is the last.
          ...(resumable ? { chunkSize: this.#chunkBytes, metadata: { contentLength: bytes.length } } : {}),
        }),
      );
      await raceAbort(upload, options.signal);
    } catch (error) {
      throw toStorageError(error, uri, 'upload');
    }
    return { uri, byteSize: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  }

  uriOf(key: string): string {
    return `gs://${this.#bucketName}/${this.#nameOfKey(key)}`;
  }

  async get(uri: string, options?: { signal?: AbortSignal }): Promise<Buffer> {
    const name = this.#nameOf(uri);
    return withAbortableRequests(options?.signal, (headers) =>
      this.#download(uri, this.#file(name, headers), options),
    );
  }

  async #download(uri: string, file: File, options?: { signal?: AbortSignal }): Promise<Buffer> {
    // A stream rather than `download()`, so that the abort signal and the watchdog can end it.
    // CRC32C validation stays on: a full download is checked against the server's `x-goog-hash`.
    const stream = file.createReadStream({ validation: 'crc32c' });
    if (options?.signal) addAbortSignal(options.signal, stream);
    // The client's HTTP layer (node-fetch 2) never ends nor fails a body whose connection drops
    // before Content-Length bytes arrived, and its request timeout stops at the headers: without
    // this watchdog such a download would wait for ever. It starts with the (final) response, so
    // that the client's own waits between retries do not count as a stall.
    let watchdog: NodeJS.Timeout | undefined;
    const rearm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        stream.destroy(new StorageError(`download of ${uri} stalled for ${this.#requestTimeoutMs} ms`, uri));
      }, this.#requestTimeoutMs);
    };
    stream.once('response', rearm);
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of stream) {
        chunks.push(chunk as Buffer);
        rearm();
      }
      return Buffer.concat(chunks);
    } catch (error) {
      throw toStorageError(error, uri, 'download');
    } finally {
      clearTimeout(watchdog);
    }
  }

  async check(options?: { signal?: AbortSignal }): Promise<void> {
    let exists: boolean;
    try {
      options?.signal?.throwIfAborted();
      // A bucket-level request carries no call header: given up on, it ends at its own timeout.
      [exists] = await raceAbort(this.#bucket.exists(), options?.signal);
    } catch (error) {
      throw toStorageError(error, this.baseUri, 'check');
    }
    if (!exists) throw new StorageError(`the bucket ${this.#bucketName} does not exist`, this.baseUri);
  }

  async delete(uri: string, options?: { signal?: AbortSignal }): Promise<void> {
    const name = this.#nameOf(uri);
    try {
      options?.signal?.throwIfAborted();
      const deletion = withAbortableRequests(options?.signal, (headers) =>
        this.#file(name, headers).delete({ ignoreNotFound: true }),
      );
      await raceAbort(deletion, options?.signal);
    } catch (error) {
      throw toStorageError(error, uri, 'delete');
    }
  }

  #nameOf(uri: string): string {
    const base = `${this.baseUri}/`;
    const key = uri.startsWith(base) ? uri.slice(base.length) : undefined;
    if (key === undefined || !isValidKey(key)) {
      throw new StorageError(`${uri} is not an object URI under this store's base ${this.baseUri}`, uri);
    }
    return this.#prefix ? `${this.#prefix}/${key}` : key;
  }

  /**
   * The client's handle on one object for one call. A File is not shared between calls, so the
   * `headers` (abortable-requests.ts) go on the requests of this call only: the client applies a
   * File's interceptors to each request it makes for it, retries and resumable chunks included.
   */
  #file(name: string, headers: Readonly<Record<string, string>>): File {
    const file = this.#bucket.file(name);
    if (Object.keys(headers).length > 0) {
      file.interceptors.push({
        // Declared as taking request options and answering decorated ones; at run time it is
        // handed the decorated options and must answer them.
        request: (reqOpts) => ({ ...reqOpts, headers: { ...reqOpts.headers, ...headers } }) as Decorated,
      });
    }
    return file;
  }

  /** The object name of a key: the key under the prefix. */
  #nameOfKey(key: string): string {
    if (!isValidKey(key)) throw new StorageError(`invalid object key ${JSON.stringify(key)}`, key);
    return this.#prefix ? `${this.#prefix}/${key}` : key;
  }
}

/** Same rule as the filesystem backend, so that a key valid for one is valid for the other. */
function isValidKey(key: string): boolean {
  return key
    .split('/')
    .every((segment) => segment !== '' && segment !== '.' && segment !== '..' && !/[\\\0]/.test(segment));
}

function isGoogleEndpoint(endpoint: string): boolean {
  try {
    const host = new URL(/^https?:\/\//.test(endpoint) ? endpoint : `https://${endpoint}`).hostname;
    return host === 'googleapis.com' || host.endsWith('.googleapis.com');
  } catch {
    return false;
  }
}

/** Rejects as soon as the signal fires, whatever the work does about it. */
async function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  // The loser of the race must not become an unhandled rejection.
  work.catch(() => {});
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

function toStorageError(
  error: unknown,
  uri: string,
  operation: 'upload' | 'download' | 'delete' | 'check',
): StorageError {
  if (error instanceof StorageError) return error;
  if (error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError')) {
    return new StorageError(`${operation} of ${uri} aborted: ${error.message}`, uri, { cause: error });
  }
  const code = (error as { code?: unknown } | null)?.code;
  // On an upload, 404 means the bucket is missing, not the object.
  if (code === 404 && operation === 'download') {
    return new ObjectNotFoundError(`object not found: ${uri}`, uri, { cause: error });
  }
  const status = typeof code === 'number' || typeof code === 'string' ? ` (${code})` : '';
  return new StorageError(`${operation} of ${uri} failed${status}: ${summarise(error)}`, uri, {
    cause: error,
  });
}

/** A failed download carries the raw JSON error body as its message; say what it says. */
function summarise(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  try {
    const body = JSON.parse(message) as { error?: { message?: unknown } };
    if (typeof body.error?.message === 'string') return body.error.message;
  } catch {}
  const line = message.split('\n', 1)[0].trim();
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}
