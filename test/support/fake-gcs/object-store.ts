/**
 * The buckets and objects, in memory. Any bucket exists unless the server was started with a
 * list of buckets; then the others answer 404, as a misconfigured bucket name would on GCS.
 */
import { crc32cOf, md5Of } from './checksums.js';
import { HttpError } from './http.js';

export interface FakeGcsObject {
  bucket: string;
  name: string;
  data: Buffer;
  contentType: string;
  generation: string;
  crc32c: string;
  md5Hash: string;
  updated: string;
}

export class ObjectStore {
  readonly #objects = new Map<string, FakeGcsObject>();
  readonly #buckets: string[] | undefined;
  // Strictly increasing, as the real server's are; clients compare them as strings of digits.
  #generation = Date.now() * 1000;

  constructor(buckets: string[] | undefined) {
    this.#buckets = buckets;
  }

  /** Stores (or replaces) an object as a finished upload does: new generation, fresh checksums. */
  put(bucket: string, name: string, data: Buffer, contentType: string): FakeGcsObject {
    const object: FakeGcsObject = {
      bucket,
      name,
      data,
      contentType,
      generation: String(++this.#generation),
      crc32c: crc32cOf(data),
      md5Hash: md5Of(data),
      updated: new Date().toISOString(),
    };
    this.#objects.set(keyOf(bucket, name), object);
    return object;
  }

  get(bucket: string, name: string): FakeGcsObject | undefined {
    return this.#objects.get(keyOf(bucket, name));
  }

  delete(bucket: string, name: string): boolean {
    return this.#objects.delete(keyOf(bucket, name));
  }

  /** The objects of a bucket, ordered by name, as GCS lists them. */
  list(bucket: string): FakeGcsObject[] {
    return [...this.#objects.values()]
      .filter((o) => o.bucket === bucket)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  clear(): void {
    this.#objects.clear();
  }

  bucketExists(bucket: string): boolean {
    return this.#buckets === undefined || this.#buckets.includes(bucket);
  }

  /** Answers 404 for a bucket that does not exist. */
  requireBucket(bucket: string): void {
    if (!this.bucketExists(bucket)) {
      throw new HttpError(404, `The specified bucket does not exist: ${bucket}`);
    }
  }

  /** The object, or a 404 for it or for its bucket, with the real server's messages. */
  find(bucket: string, name: string): FakeGcsObject {
    this.requireBucket(bucket);
    const object = this.get(bucket, name);
    if (!object) throw new HttpError(404, `No such object: ${bucket}/${name}`);
    return object;
  }
}

function keyOf(bucket: string, name: string): string {
  return `${bucket}/${name}`;
}
