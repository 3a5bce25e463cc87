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
  /**
   * `<organization_id>/<job_id>[/…]`: every object of a job lives under it. A function is called
   * only when something is offloaded (a completion draws a random folder; most have nothing to write).
   */
  keyPrefix: string | (() => string);
  role: ArtifactRole;
  settings: OffloadSettings;
  /**
   * Called once before the first write, with every URI the offload may write; not called when
   * nothing is offloaded. It answers the moment (`performance.now()`) by which every write must
   * have ended: a write that could not end by then (it would start later than that less
   * STORAGE_WRITE_TIMEOUT_MS) is not started, and the offload fails with a StorageError.
   * A rejection is the offload's, before anything was written.
   */
  beforeWrites?: (planned: PlannedWrites) => Promise<{ writeBy: number }>;
}

/** What an offload is about to write. */
export interface PlannedWrites {
  uris: string[];
  /**
   * The longest the writes can take: each has STORAGE_WRITE_TIMEOUT_MS, the data URLs run
   * OFFLOAD_CONCURRENCY at a time, and the whole document (if any) after them.
   */
  maxDurationMs: number;
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
 * whose write timed out: given up on before storage answered, they may exist now or appear later;
 * `failed` those whose write answered an error (storage may still hold a copy of an attempt that
 * lost its answer). Planned writes in none of these were never started.
 */
export class OffloadError extends Error {
  override name = 'OffloadError';
  constructor(
    readonly written: readonly ArtifactRecord[],
    readonly cut: readonly { storageUri: string }[],
    readonly failed: readonly { storageUri: string }[],
    options: { cause: unknown },
  ) {
    super(
      `offloading to object storage failed: ${options.cause instanceof Error ? options.cause.message : String(options.cause)}`,
      options,
    );
  }
}

/** One write to make: a data URL at its pointer, or the whole document. */
interface Write {
  key: string;
  uri: string;
  bytes: Buffer;
  contentType: string;
  pointer: string;
  kind: 'data_url' | 'json';
}

/**
 * One write, given up after `timeoutMs` (STORAGE_WRITE_TIMEOUT_MS): its signal aborts, so the
 * store stops what it can, and the write fails with a StorageError at the deadline whatever the
 * store does. Its URI is then noted in `cut`; a write that answered an error, in `failed`.
 */
async function putWithin(
  store: ObjectStore,
  write: Write,
  timeoutMs: number,
  outcome: { cut: { storageUri: string }[]; failed: { storageUri: string }[] },
): Promise<StoredObject> {
  try {
    const object = await withTimeout(
      (signal) => store.put(write.key, write.bytes, { contentType: write.contentType, signal }),
      timeoutMs,
    );
    // The URI was recorded (and put into the document) before the write: they must agree.
    if (object.uri !== write.uri) {
      throw new StorageError(`the store wrote ${object.uri} where it announced ${write.uri}`, write.uri);
    }
    return object;
  } catch (error) {
    if (!(error instanceof TimeoutError)) {
      outcome.failed.push({ storageUri: write.uri });
      throw error;
    }
    outcome.cut.push({ storageUri: write.uri });
    throw new StorageError(`writing ${write.uri} timed out after ${timeoutMs} ms`, write.uri, {
      cause: error,
    });
  }
}

/**
 * Decides every write before the first one starts: the data URLs over the threshold, replaced in
 * `document` by the URIs they will have (the store tells a key's URI without writing), then the
 * whole document when it is still over INLINE_DOCUMENT_LIMIT_BYTES.
 */
function planWrites(
  store: ObjectStore,
  document: unknown,
  options: OffloadOptions,
): { dataUrls: Write[]; whole: Write | undefined; stored: unknown } {
  const { settings, role } = options;
  let base: string | undefined;
  const keyBase = () => {
    base ??= `${typeof options.keyPrefix === 'function' ? options.keyPrefix() : options.keyPrefix}/${role}`;
    return base;
  };
  const dataUrls = findDataUrls(document, settings.offloadThresholdBytes).map((candidate, i): Write => {
    const key = `${keyBase()}/${i}.bin`;
    const uri = store.uriOf(key);
    candidate.replace(uri);
    const { bytes, contentType, pointer } = candidate;
    return { key, uri, bytes, contentType, pointer, kind: 'data_url' };
  });
  const serialised = JSON.stringify(document);
  if (Buffer.byteLength(serialised) <= settings.inlineDocumentLimitBytes) {
    return { dataUrls, whole: undefined, stored: document };
  }
  const key = `${keyBase()}/document.json`;
  const uri = store.uriOf(key);
  const whole: Write = {
    key,
    uri,
    bytes: Buffer.from(serialised),
    contentType: 'application/json',
    pointer: '',
    kind: 'json',
  };
  return { dataUrls, whole, stored: uri };
}

/**
 * Writes the large parts of `document` to object storage. `document` is modified in place.
 * If any write fails, every write has settled (or timed out) when OffloadError is thrown, and it
 * lists the objects written, the writes cut and those that failed, for the caller to discard.
 */
export async function offloadDocument(
  store: ObjectStore,
  document: unknown,
  options: OffloadOptions,
): Promise<OffloadResult> {
  const { settings } = options;
  let plan: ReturnType<typeof planWrites>;
  try {
    plan = planWrites(store, document, options);
  } catch (error) {
    // A key the store refuses: nothing was written.
    if (error instanceof StorageError) throw new OffloadError([], [], [], { cause: error });
    throw error;
  }
  const { dataUrls, whole } = plan;
  if (dataUrls.length === 0 && !whole) return { stored: plan.stored, artifacts: [] };
  const timeoutMs = settings.storageWriteTimeoutMs;
  const rounds = Math.ceil(dataUrls.length / settings.offloadConcurrency) + (whole ? 1 : 0);
  const { writeBy } = (await options.beforeWrites?.({
    uris: [...dataUrls, ...(whole ? [whole] : [])].map((w) => w.uri),
    maxDurationMs: rounds * timeoutMs,
  })) ?? { writeBy: Number.POSITIVE_INFINITY };

  const artifacts: ArtifactRecord[] = [];
  const outcome = { cut: [] as { storageUri: string }[], failed: [] as { storageUri: string }[] };
  const put = async (write: Write) => {
    if (performance.now() + timeoutMs > writeBy) {
      throw new StorageError(`writing ${write.uri} could not end before the offload's deadline`, write.uri);
    }
    const object = await putWithin(store, write, timeoutMs, outcome);
    artifacts.push({
      role: options.role,
      pointer: write.pointer,
      kind: write.kind,
      storageUri: write.uri,
      byteSize: object.byteSize,
      sha256: object.sha256,
      contentType: write.contentType,
    });
  };
  try {
    // Every write settles before a failure is rethrown, so the cleanup sees all of them.
    let failure: unknown;
    await mapWithConcurrency(dataUrls, settings.offloadConcurrency, async (write) => {
      if (failure) return;
      try {
        await put(write);
      } catch (error) {
        failure ??= error;
      }
    });
    if (failure) throw failure;
    if (whole) await put(whole);
    return { stored: plan.stored, artifacts };
  } catch (error) {
    throw new OffloadError(artifacts, outcome.cut, outcome.failed, { cause: error });
  }
}
