/**
 * The one interface the rest of the server sees for object storage. Objects are addressed by a
 * key relative to the store's base (`<org>/<job>/<role>/<name>`); `put` answers the full URI
 * that is recorded in the database (`gs://bucket/prefix/key` or `file:///dir/key`), and
 * `get`/`delete` take such a URI back.
 *
 * A call given a signal rejects with a StorageError as soon as it can once the signal aborts, and
 * stops the work it can stop; what it cannot (a put the server had whole) may still complete.
 */
export interface StoredObject {
  uri: string;
  byteSize: number;
  /** Lowercase hex SHA-256 of the bytes. */
  sha256: string;
}

export interface ObjectStore {
  /** The base URI objects are written under, e.g. `gs://bucket/prefix` or `file:///var/lib/jobs`. */
  readonly baseUri: string;
  put(
    key: string,
    bytes: Buffer,
    options: { contentType: string; signal?: AbortSignal },
  ): Promise<StoredObject>;
  /**
   * The URI `put` answers for `key`, without touching storage: what to delete after a put that
   * was given up on before it answered. Throws StorageError for a key `put` would refuse.
   */
  uriOf(key: string): string;
  /** Throws ObjectNotFoundError when the object does not exist, StorageError on anything else. */
  get(uri: string, options?: { signal?: AbortSignal }): Promise<Buffer>;
  /** Deleting an object that does not exist succeeds. */
  delete(uri: string, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Whether the store can be used at all: the bucket exists and answers, the folder can be
   * written. Throws StorageError saying why. For readiness and the start, not for every request.
   */
  check?(options?: { signal?: AbortSignal }): Promise<void>;
  /** Releases clients and sockets. */
  close?(): Promise<void>;
}

export class StorageError extends Error {
  override name = 'StorageError';
  constructor(
    message: string,
    readonly uri: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class ObjectNotFoundError extends StorageError {
  override name = 'ObjectNotFoundError';
}
