import { createHash } from 'node:crypto';
import type { ArtifactRecord, ArtifactRole } from '../domain/artifacts.js';
import { mapWithConcurrency, TimeoutError, withTimeout } from '../lib/concurrency.js';
import { decodePointer, setAtPointer } from './json-pointer.js';
import { ObjectNotFoundError, type ObjectStore } from './object-store.js';

export const RESTORE_FAILURE_REASONS = [
  'not_found',
  'storage_error',
  'timeout',
  'size_mismatch',
  'checksum_mismatch',
  'invalid_content',
] as const;
export type RestoreFailureReason = (typeof RESTORE_FAILURE_REASONS)[number];

export interface RestoreWarning {
  code: 'artifact_restore_failed';
  message: string;
  details: { pointer: string; reason: RestoreFailureReason; role: ArtifactRole; storage_uri: string };
}

export interface RestoreOptions {
  concurrency: number;
  timeoutMs: number;
  /**
   * When the whole answer must be ready (`performance.now()` time): an artifact not read by then
   * is a `timeout`, so a slow or hung store bounds an answer, not each of its artifacts.
   */
  deadline?: number;
}

const REASON_TEXT: Record<RestoreFailureReason, string> = {
  not_found: 'the object does not exist in storage',
  storage_error: 'object storage answered with an error',
  timeout: 'reading the object timed out',
  size_mismatch: 'the object does not have the recorded size',
  checksum_mismatch: 'the object does not match its recorded sha256',
  invalid_content: 'the object does not hold valid JSON',
};

type Fetched = { ok: true; value: unknown } | { ok: false; reason: RestoreFailureReason };

async function fetchArtifact(
  store: ObjectStore,
  artifact: ArtifactRecord,
  options: RestoreOptions,
): Promise<Fetched> {
  const left = options.deadline === undefined ? Infinity : options.deadline - performance.now();
  const timeoutMs = Math.min(options.timeoutMs, left);
  if (timeoutMs <= 0) return { ok: false, reason: 'timeout' };
  let bytes: Buffer;
  try {
    bytes = await withTimeout((signal) => store.get(artifact.storageUri, { signal }), timeoutMs);
  } catch (error) {
    if (error instanceof TimeoutError) return { ok: false, reason: 'timeout' };
    if (error instanceof ObjectNotFoundError) return { ok: false, reason: 'not_found' };
    return { ok: false, reason: 'storage_error' };
  }
  if (bytes.length !== artifact.byteSize) return { ok: false, reason: 'size_mismatch' };
  if (createHash('sha256').update(bytes).digest('hex') !== artifact.sha256) {
    return { ok: false, reason: 'checksum_mismatch' };
  }
  if (artifact.kind === 'data_url') {
    return { ok: true, value: `data:${artifact.contentType};base64,${bytes.toString('base64')}` };
  }
  try {
    return { ok: true, value: JSON.parse(bytes.toString('utf8')) };
  } catch {
    return { ok: false, reason: 'invalid_content' };
  }
}

function placeArtifacts(
  document: unknown,
  entries: readonly { artifact: ArtifactRecord; result: Fetched }[],
): { document: unknown; warnings: RestoreWarning[] } {
  // Parents before children: a whole offloaded body ('') holds references to its data URLs.
  const order = entries
    .map((entry) => ({ ...entry, depth: decodePointer(entry.artifact.pointer).length }))
    .sort((a, b) => a.depth - b.depth);
  let root = document;
  const warnings: RestoreWarning[] = [];
  const failedPointers: string[] = [];
  for (const { artifact, result } of order) {
    // Nothing to put a value into when an enclosing artifact could not be restored; that
    // artifact's own warning already says so.
    if (failedPointers.some((p) => p === '' || artifact.pointer.startsWith(`${p}/`))) continue;
    const placed = setAtPointer(root, artifact.pointer, result.ok ? result.value : null);
    if (placed) root = placed.root;
    if (!result.ok) {
      failedPointers.push(artifact.pointer);
      const where =
        artifact.pointer === ''
          ? `the whole ${artifact.role}`
          : `the ${artifact.role} value at '${artifact.pointer}'`;
      warnings.push({
        code: 'artifact_restore_failed',
        message: `Could not restore ${where}: ${REASON_TEXT[result.reason]}.`,
        details: {
          pointer: artifact.pointer,
          reason: result.reason,
          role: artifact.role,
          storage_uri: artifact.storageUri,
        },
      });
    }
  }
  return { document: root, warnings };
}

/**
 * Puts every offloaded value of a job's documents (request, response) back at its JSON pointer.
 * All their artifacts are read in one pass, so `options.concurrency` bounds the whole restore.
 * Never throws for a storage problem: a value that cannot be restored becomes null and gets one
 * warning.
 */
export async function restoreDocuments(
  store: ObjectStore,
  documents: Partial<Record<ArtifactRole, unknown>>,
  artifacts: readonly ArtifactRecord[],
  options: RestoreOptions,
): Promise<{ documents: Partial<Record<ArtifactRole, unknown>>; warnings: RestoreWarning[] }> {
  const wanted = artifacts.filter((a) => a.role in documents);
  const fetched = await mapWithConcurrency(wanted, options.concurrency, (a) =>
    fetchArtifact(store, a, options),
  );
  const restored: Partial<Record<ArtifactRole, unknown>> = {};
  const warnings: RestoreWarning[] = [];
  for (const role of Object.keys(documents) as ArtifactRole[]) {
    const entries = wanted
      .map((artifact, i) => ({ artifact, result: fetched[i] }))
      .filter((e) => e.artifact.role === role);
    const placed = placeArtifacts(documents[role], entries);
    restored[role] = placed.document;
    warnings.push(...placed.warnings);
  }
  return { documents: restored, warnings };
}

/** restoreDocuments for one document. */
export async function restoreDocument(
  store: ObjectStore,
  document: unknown,
  artifacts: readonly ArtifactRecord[],
  options: RestoreOptions,
): Promise<{ document: unknown; warnings: RestoreWarning[] }> {
  const role = artifacts[0]?.role ?? 'request';
  const { documents, warnings } = await restoreDocuments(store, { [role]: document }, artifacts, options);
  return { document: documents[role], warnings };
}
