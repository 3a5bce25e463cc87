import { ObjectNotFoundError, type ObjectStore, StorageError, type StoredObject } from './object-store.js';

/** The part of a pino logger the tracker writes to. */
export interface OutageLog {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/**
 * An ObjectStore that says when storage stops and starts answering: one warn line,
 * "object storage unavailable" with the first failure's reason, when a call fails with a
 * StorageError, and one info line, "object storage reachable again", at the next call that
 * succeeds. During an outage every request that needed storage fails, and each one's own log
 * line (a 503, a restore warning) can then stay quiet: the tracker has said what is going on.
 *
 * A missing object (ObjectNotFoundError) is an answer, not an outage. Every other StorageError
 * counts, calls given up on by their caller's signal included (a restore or a write that timed
 * out): a storage that does not answer in time is down for the client waiting on it. A failure
 * that is not an outage (a key or URI the store refuses, a special file in the file store) is
 * then reported once too, which is what such a bug deserves.
 */
export class MonitoredObjectStore implements ObjectStore {
  readonly #inner: ObjectStore;
  readonly #log: OutageLog;
  #outage: { since: number; failures: number } | undefined;

  constructor(inner: ObjectStore, log: OutageLog) {
    this.#inner = inner;
    this.#log = log;
  }

  get baseUri(): string {
    return this.#inner.baseUri;
  }

  /** True from a failure to the next success. */
  get unavailable(): boolean {
    return this.#outage !== undefined;
  }

  uriOf(key: string): string {
    return this.#inner.uriOf(key);
  }

  put(
    key: string,
    bytes: Buffer,
    options: { contentType: string; signal?: AbortSignal },
  ): Promise<StoredObject> {
    return this.#watch(() => this.#inner.put(key, bytes, options));
  }

  get(uri: string, options?: { signal?: AbortSignal }): Promise<Buffer> {
    return this.#watch(() => this.#inner.get(uri, options));
  }

  delete(uri: string, options?: { signal?: AbortSignal }): Promise<void> {
    return this.#watch(() => this.#inner.delete(uri, options));
  }

  async check(options?: { signal?: AbortSignal }): Promise<void> {
    if (this.#inner.check)
      await this.#watch(() => (this.#inner.check as NonNullable<ObjectStore['check']>)(options));
  }

  async close(): Promise<void> {
    await this.#inner.close?.();
  }

  async #watch<T>(call: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await call();
    } catch (error) {
      if (error instanceof StorageError && !(error instanceof ObjectNotFoundError)) this.#failed(error);
      throw error;
    }
    this.#succeeded();
    return result;
  }

  #failed(error: StorageError): void {
    if (this.#outage) {
      this.#outage.failures++;
      return;
    }
    this.#outage = { since: Date.now(), failures: 1 };
    this.#log.warn(
      { store: this.baseUri, reason: error.message, uri: error.uri },
      'object storage unavailable',
    );
  }

  #succeeded(): void {
    if (!this.#outage) return;
    const { since, failures } = this.#outage;
    this.#outage = undefined;
    this.#log.info(
      { store: this.baseUri, unavailable_ms: Date.now() - since, failed_calls: failures },
      'object storage reachable again',
    );
  }
}
