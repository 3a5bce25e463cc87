/**
 * The checksums GCS keeps for every object and checks on every upload. The CRC32C comes from
 * `@google-cloud/storage` itself: the client compares its own value with the server's after every
 * upload (and deletes the object and throws when they differ) and against `x-goog-hash` after
 * every full download, so the server must compute exactly what the client does.
 */
import { createHash } from 'node:crypto';
import { CRC32C } from '@google-cloud/storage';
import { HttpError } from './http.js';

/** CRC32C in the form GCS uses in object metadata and `x-goog-hash`: 4 bytes big-endian, base64. */
export function crc32cOf(data: Buffer): string {
  const crc = new CRC32C();
  crc.update(data);
  return crc.toString();
}

/** MD5 in the same form, base64. */
export function md5Of(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

/** `x-goog-hash: crc32c=…,md5=…`, which the client sends with the last chunk of a resumable upload. */
export function parseHashHeader(value: string | undefined): { crc32c?: string; md5?: string } {
  const hashes: Record<string, string> = {};
  for (const pair of (value ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at > 0) hashes[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return { crc32c: hashes.crc32c, md5: hashes.md5 };
}

/** The real server refuses an upload whose declared checksums do not match what arrived. */
export function verifyClaimedHashes(data: Buffer, crc32c: string | undefined, md5: string | undefined): void {
  if (crc32c !== undefined && crc32c !== crc32cOf(data)) {
    throw new HttpError(400, `Provided CRC32C "${crc32c}" doesn't match calculated CRC32C`);
  }
  if (md5 !== undefined && md5 !== md5Of(data)) {
    throw new HttpError(400, `Provided MD5 hash "${md5}" doesn't match calculated MD5 hash`);
  }
}
