import { createHash, randomUUID } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { access, mkdir, open, rename, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ObjectNotFoundError, type ObjectStore, StorageError, type StoredObject } from './object-store.js';

/**
 * How often a put makes its folder again when a delete removed it in between: each round trip
 * needs another delete emptying the same folder at that very moment, so a few are plenty.
 */
const CREATE_ATTEMPTS = 10;

/**
 * Objects as files under one directory: the embedded default, and what tests use when they do not
 * care about GCS. URIs are canonical `file://` URLs (`pathToFileURL`), so a key segment holding a
 * space or `#` still round-trips.
 *
 * Every path is built from validated key segments joined under the base directory; a URI is never
 * handed to the filesystem as is, so no URI (`..`, `%2F`, another directory) can reach a file
 * outside the base. Symbolic links placed inside the base by someone else are followed: the base
 * directory is assumed to belong to this server.
 *
 * Only regular files are objects. A read opens without blocking (O_NONBLOCK) and checks what it
 * opened before reading: a plain open() of a FIFO, a terminal or a file under a lease waits in a
 * thread of libuv's small pool (4 by default) that no abort signal can free, and a few such
 * waits would stall every other file operation of the process, writes included. O_NOFOLLOW is
 * not used, because links are followed (above); the check is on the file the link leads to.
 */
export class FilesystemObjectStore implements ObjectStore {
  readonly baseUri: string;
  readonly #root: string;
  /** `baseUri` with exactly one trailing slash: what every object URI starts with. */
  readonly #uriPrefix: string;

  constructor(directory: string) {
    if (!path.isAbsolute(directory)) {
      throw new Error(`FilesystemObjectStore needs an absolute directory, got ${JSON.stringify(directory)}`);
    }
    this.#root = path.resolve(directory);
    this.baseUri = pathToFileURL(this.#root).href;
    this.#uriPrefix = this.baseUri.endsWith('/') ? this.baseUri : `${this.baseUri}/`;
  }

  async put(
    key: string,
    bytes: Buffer,
    options: { contentType: string; signal?: AbortSignal },
  ): Promise<StoredObject> {
    const target = this.#targetOf(key);
    const uri = pathToFileURL(target).href;
    const { signal } = options;
    // Written next to the target and renamed over it: readers see the old object or the whole new
    // one, never a prefix. The name has no part of the key so it cannot run past NAME_MAX.
    const temporary = path.join(path.dirname(target), `.tmp-${randomUUID()}`);
    try {
      signal?.throwIfAborted();
      const handle = await this.#createIn(path.dirname(target), temporary);
      try {
        await handle.writeFile(bytes, { signal });
        // The URI goes into the database once put returns: the bytes must survive a crash by then.
        await handle.sync();
      } finally {
        await handle.close();
      }
      signal?.throwIfAborted();
      await rename(temporary, target);
    } catch (error) {
      await unlink(temporary).catch(() => {});
      throw new StorageError(`could not write ${uri}: ${describe(error)}`, uri, { cause: error });
    }
    return { uri, byteSize: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  }

  async get(uri: string, options?: { signal?: AbortSignal }): Promise<Buffer> {
    const file = this.#pathOf(uri);
    try {
      options?.signal?.throwIfAborted();
      const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
      try {
        const stat = await handle.stat();
        if (!stat.isFile()) {
          throw new StorageError(`could not read ${uri}: ${fileType(stat)}, not a regular file`, uri);
        }
        return await handle.readFile({ signal: options?.signal });
      } finally {
        await handle.close();
      }
    } catch (error) {
      if (error instanceof StorageError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      // ENOTDIR: a parent of the path is a file, so the object cannot exist either.
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new ObjectNotFoundError(`object not found: ${uri}`, uri, { cause: error });
      }
      throw new StorageError(`could not read ${uri}: ${describe(error)}`, uri, { cause: error });
    }
  }

  uriOf(key: string): string {
    return pathToFileURL(this.#targetOf(key)).href;
  }

  async check(): Promise<void> {
    try {
      await mkdir(this.#root, { recursive: true });
      await access(this.#root, constants.W_OK);
    } catch (error) {
      throw new StorageError(`cannot write to ${this.#root}: ${describe(error)}`, this.baseUri, {
        cause: error,
      });
    }
  }

  /**
   * Deletes the file, then the folders it leaves empty, up to (not including) the base: a job's
   * folders would otherwise stay for ever, two or three per job. A folder that is not empty, or
   * already gone, ends the climb; a put racing into a folder removed here makes it again
   * (`#createIn`).
   */
  async delete(uri: string, options?: { signal?: AbortSignal }): Promise<void> {
    const file = this.#pathOf(uri);
    try {
      options?.signal?.throwIfAborted();
      await unlink(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') {
        throw new StorageError(`could not delete ${uri}: ${describe(error)}`, uri, { cause: error });
      }
    }
    await this.#removeEmptyFolders(path.dirname(file));
  }

  async #removeEmptyFolders(start: string): Promise<void> {
    for (let folder = start; folder !== this.#root && folder.startsWith(`${this.#root}${path.sep}`); ) {
      try {
        // rmdir removes only an empty folder: one holding a file or a put's temporary file stays.
        await rmdir(folder);
      } catch {
        // ENOTEMPTY, ENOENT (a concurrent delete removed it), ENOTDIR, EBUSY…: the object is
        // gone all the same; what is left is for a later delete in the same folder.
        return;
      }
      folder = path.dirname(folder);
    }
  }

  /**
   * Creates the folder (and its parents) and opens `file` in it. A delete may remove the folder,
   * empty, between the two (`#removeEmptyFolders`): the open then fails with ENOENT, and the
   * folder is made again. Once the file is open the folder is not empty and stays.
   */
  async #createIn(folder: string, file: string) {
    for (let attempt = 1; ; attempt++) {
      try {
        await mkdir(folder, { recursive: true });
        return await open(file, 'wx');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt === CREATE_ATTEMPTS) throw error;
      }
    }
  }

  #targetOf(key: string): string {
    const segments = keySegments(key);
    if (segments === undefined) throw new StorageError(`invalid object key ${JSON.stringify(key)}`, key);
    return path.join(this.#root, ...segments);
  }

  /**
   * Maps a URI back to a path by string, not through `fileURLToPath`: URL parsing would resolve
   * `..` and `%2e%2e` before any check could see them.
   */
  #pathOf(uri: string): string {
    if (!uri.startsWith(this.#uriPrefix)) {
      throw new StorageError(`${uri} is not under this store's base ${this.baseUri}`, uri);
    }
    let segments: string[];
    try {
      segments = uri.slice(this.#uriPrefix.length).split('/').map(decodeURIComponent);
    } catch (error) {
      throw new StorageError(`malformed object URI ${uri}`, uri, { cause: error });
    }
    // A decoded segment holding `/` came from `%2F`: refused by isSafeSegment rather than guessed at.
    if (/[?#]/.test(uri) || !segments.every(isSafeSegment)) {
      throw new StorageError(`invalid object URI ${uri}`, uri);
    }
    return path.join(this.#root, ...segments);
  }
}

/**
 * The segments of a relative key such as `org/job/role/name`, or undefined when the key could
 * name something other than a file strictly inside the base.
 */
function keySegments(key: string): string[] | undefined {
  const segments = key.split('/');
  return segments.every(isSafeSegment) ? segments : undefined;
}

/** Not empty (leading, trailing or double slashes), not `.` or `..`, no separator or NUL. */
function isSafeSegment(segment: string): boolean {
  return segment !== '' && segment !== '.' && segment !== '..' && !/[/\\\0]/.test(segment);
}

function fileType(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  return 'a special file';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
