import type { Config } from '../config.js';
import type { ArtifactRecord, ArtifactRole } from '../domain/artifacts.js';
import { mapWithConcurrency, TimeoutError, withTimeout } from '../lib/concurrency.js';
import { DATA_URL } from './data-urls.js';
import { encodePointer } from './json-pointer.js';
import { type ObjectStore, StorageError, type StoredObject } from './object-store.js';

/** The settings, under their configuration names (OFFLOAD_THRESHOLD_BYTES, …). */
export type OffloadSettings = Pick<
  Config,
  'offloadThresholdBytes' | 'inlineDocumentLimitBytes' | 'offloadConcurrency' | 'storageWriteTimeoutMs'
>;

export interface OffloadOptions {
  /** `<organization_id>/<job_id>[/…]`: every object of a job lives under it. */
  keyPrefix: string;
  role: ArtifactRole;
  settings: OffloadSettings;
}

export interface OffloadResult {
  /** The document as stored in the row: offloaded values replaced by their storage URI. */
  stored: unknown;
  artifacts: ArtifactRecord[];
}

interface Candidate {
  pointer: string;
  contentType: string;
  bytes: Buffer;
  replace: (uri: string) => void;
}

/** Finds the data URLs longer than `thresholdBytes` (UTF-8); only those whose base64 re-encodes to
 * itself, so the restore is byte-for-byte what the client sent. */
function findDataUrls(document: unknown, thresholdBytes: number): Candidate[] {
  const found: Candidate[] = [];
  const visit = (value: unknown, path: (string | number)[], replace: (v: string) => void) => {
    if (typeof value === 'string') {
      // A string is never shorter in UTF-8 bytes than in UTF-16 units: the length check is exact
      // for the ASCII a data URL is made of, and the byte count is only taken when it matters.
      if (value.length <= thresholdBytes && Buffer.byteLength(value) <= thresholdBytes) return;
      const match = DATA_URL.exec(value);
      if (!match) return;
      const payload = value.slice(match[0].length);
      const bytes = Buffer.from(payload, 'base64');
      if (bytes.toString('base64') !== payload) return;
      found.push({ pointer: encodePointer(path), contentType: match[1], bytes, replace });
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => {
        visit(item, [...path, i], (v) => {
          value[i] = v;
        });
      });
    } else if (value !== null && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      for (const key of Object.keys(record)) {
        visit(record[key], [...path, key], (v) => {
          record[key] = v;
        });
      }
    }
  };
  visit(document, [], () => {});
  return found;
}

/**
 * An offload that failed part-way. `written` are the objects it had stored; `cut` the objects
 * whose write timed out: given up on before storage answered, they may exist now or appear later.
 */
export class OffloadError extends Error {
  override name = 'OffloadError';
  constructor(
    readonly written: readonly ArtifactRecord[],
    readonly cut: readonly { storageUri: string }[],
    options: { cause: unknown },
  ) {
    super(
      `offloading to object storage failed: ${options.cause instanceof Error ? options.cause.message : String(options.cause)}`,
      options,
    );
  }
}

/**
 * One write, given up after `timeoutMs` (STORAGE_WRITE_TIMEOUT_MS): its signal aborts, so the
 * store stops what it can, and the write fails with a StorageError at the deadline whatever the
 * store does. The key is then noted in `cut`.
 */
async function putWithin(
  store: ObjectStore,
  key: string,
  bytes: Buffer,
  contentType: string,
  timeoutMs: number,
  cut: { storageUri: string }[],
): Promise<StoredObject> {
  try {
    return await withTimeout((signal) => store.put(key, bytes, { contentType, signal }), timeoutMs);
  } catch (error) {
    if (!(error instanceof TimeoutError)) throw error;
    const uri = store.uriOf(key);
    cut.push({ storageUri: uri });
    throw new StorageError(`writing ${uri} timed out after ${timeoutMs} ms`, uri, { cause: error });
  }
}

/**
 * Writes the large parts of `document` to object storage. `document` is modified in place.
 * If any write fails, every write has settled (or timed out) when OffloadError is thrown, and it
 * lists the objects written and the writes cut, for the caller to discard.
 */
export async function offloadDocument(
  store: ObjectStore,
  document: unknown,
  options: OffloadOptions,
): Promise<OffloadResult> {
  const artifacts: ArtifactRecord[] = [];
  const cut: { storageUri: string }[] = [];
  const { settings } = options;
  const put = (key: string, bytes: Buffer, contentType: string) =>
    putWithin(store, key, bytes, contentType, settings.storageWriteTimeoutMs, cut);
  const candidates = findDataUrls(document, settings.offloadThresholdBytes);
  const keyBase = `${options.keyPrefix}/${options.role}`;
  try {
    // Every write settles before a failure is rethrown, so the cleanup below sees all of them.
    let failure: unknown;
    await mapWithConcurrency(candidates, settings.offloadConcurrency, async (candidate, i) => {
      if (failure) return;
      try {
        const object = await put(`${keyBase}/${i}.bin`, candidate.bytes, candidate.contentType);
        artifacts.push({
          role: options.role,
          pointer: candidate.pointer,
          kind: 'data_url',
          storageUri: object.uri,
          byteSize: object.byteSize,
          sha256: object.sha256,
          contentType: candidate.contentType,
        });
        candidate.replace(object.uri);
      } catch (error) {
        failure ??= error;
      }
    });
    if (failure) throw failure;
    let stored = document;
    const serialised = JSON.stringify(document);
    if (Buffer.byteLength(serialised) > settings.inlineDocumentLimitBytes) {
      const object = await put(`${keyBase}/document.json`, Buffer.from(serialised), 'application/json');
      artifacts.push({
        role: options.role,
        pointer: '',
        kind: 'json',
        storageUri: object.uri,
        byteSize: object.byteSize,
        sha256: object.sha256,
        contentType: 'application/json',
      });
      stored = object.uri;
    }
    return { stored, artifacts };
  } catch (error) {
    throw new OffloadError(artifacts, cut, { cause: error });
  }
}
