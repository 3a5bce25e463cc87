import type { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import type { ObjectStore, StoredObject } from '../../src/storage/object-store.js';

/**
 * The file store with reads that can be made to hang where no signal reaches them, as on a hung
 * network mount: nothing on a local disk does that any more (a FIFO is refused at once).
 */
export class HangingReadsStore implements ObjectStore {
  readonly #hung = new Set<string>();
  readonly #waiting: (() => void)[] = [];
  constructor(private readonly inner: FilesystemObjectStore) {}
  get baseUri() {
    return this.inner.baseUri;
  }
  #all = false;
  hang(uri: string) {
    this.#hung.add(uri);
  }
  /** Every read from now on hangs, as with a frozen bucket. */
  hangAll() {
    this.#all = true;
  }
  /** Ends the hung reads (with an error nobody waits for any more) and forgets the URIs. */
  release() {
    this.#hung.clear();
    this.#all = false;
    for (const end of this.#waiting.splice(0)) end();
  }
  uriOf(key: string) {
    return this.inner.uriOf(key);
  }
  put(key: string, bytes: Buffer, options: { contentType: string }): Promise<StoredObject> {
    return this.inner.put(key, bytes, options);
  }
  get(uri: string, options?: { signal?: AbortSignal }): Promise<Buffer> {
    if (!this.#all && !this.#hung.has(uri)) return this.inner.get(uri, options);
    return new Promise((_, reject) => this.#waiting.push(() => reject(new Error('released'))));
  }
  delete(uri: string) {
    return this.inner.delete(uri);
  }
}
