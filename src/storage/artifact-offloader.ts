import { mapWithConcurrency } from '../concurrency.js';
import type { ArtifactRecord } from './artifact-restorer.js';
import type { ArtifactRole } from './artifact-types.js';
import { encodePointer } from './json-pointer.js';
import type { ObjectStore } from './object-store.js';

export interface OffloadOptions {
  /** `<organization_id>/<job_id>`: every object of a job lives under it. */
  keyPrefix: string;
  role: ArtifactRole;
  /** Data URLs longer than this many characters are offloaded. */
  dataUrlThreshold: number;
  /** When the document is still longer than this (serialised), the whole of it is offloaded. */
  documentLimit: number;
  concurrency: number;
}

export interface OffloadResult {
  /** The document as stored in the row: offloaded values replaced by their storage URI. */
  stored: unknown;
  artifacts: ArtifactRecord[];
}

const DATA_URL = /^data:([^,]*?);base64,/;

interface Candidate {
  pointer: string;
  contentType: string;
  bytes: Buffer;
  replace: (uri: string) => void;
}

/** Finds the data URLs worth offloading; only those whose base64 re-encodes to itself, so the
 * restore is byte-for-byte what the client sent. */
function findDataUrls(document: unknown, threshold: number): Candidate[] {
  const found: Candidate[] = [];
  const visit = (value: unknown, path: (string | number)[], replace: (v: string) => void) => {
    if (typeof value === 'string') {
      if (value.length <= threshold) return;
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

/** An offload that failed part-way; `written` are the objects it had already stored. */
export class OffloadError extends Error {
  override name = 'OffloadError';
  constructor(
    readonly written: readonly ArtifactRecord[],
    options: { cause: unknown },
  ) {
    super(
      `offloading to object storage failed: ${options.cause instanceof Error ? options.cause.message : String(options.cause)}`,
      options,
    );
  }
}

/**
 * Writes the large parts of `document` to object storage. `document` is modified in place.
 * If any write fails, every write has settled when OffloadError is thrown, and it lists the
 * objects written, for the caller to discard.
 */
export async function offloadDocument(
  store: ObjectStore,
  document: unknown,
  options: OffloadOptions,
): Promise<OffloadResult> {
  const artifacts: ArtifactRecord[] = [];
  const candidates = findDataUrls(document, options.dataUrlThreshold);
  const keyBase = `${options.keyPrefix}/${options.role}`;
  try {
    // Every write settles before a failure is rethrown, so the cleanup below sees all of them.
    let failure: unknown;
    await mapWithConcurrency(candidates, options.concurrency, async (candidate, i) => {
      if (failure) return;
      try {
        const object = await store.put(`${keyBase}/${i}.bin`, candidate.bytes, {
          contentType: candidate.contentType,
        });
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
    if (Buffer.byteLength(serialised) > options.documentLimit) {
      const object = await store.put(`${keyBase}/document.json`, Buffer.from(serialised), {
        contentType: 'application/json',
      });
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
    throw new OffloadError(artifacts, { cause: error });
  }
}
