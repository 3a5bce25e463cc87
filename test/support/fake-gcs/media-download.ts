/**
 * The bytes of an object (`GET …/o/{name}?alt=media`), whole or one Range, with the headers the
 * client checks them against, and the `get` faults that corrupt, shorten or cut them.
 */
import type { Exchange } from './context.js';
import { flipBytes, type Outcome } from './faults.js';
import { HttpError, header } from './http.js';
import type { FakeGcsObject } from './object-store.js';

/** What a fault leaves of the download: which bytes, whether to vouch for them, where to hang up. */
interface ServedBytes {
  data: Buffer;
  withHashes: boolean;
  /** Destroy the socket after this many bytes, the headers having promised them all. */
  cutAfter?: number;
}

export function sendMedia(exchange: Exchange, object: FakeGcsObject, outcome?: Outcome): void {
  const { req, res } = exchange;
  const served = servedBytes(object, outcome);
  let data = served.data;
  const headers = mediaHeaders(object, served.withHashes);
  let status = 200;
  const range = parseRange(header(req, 'range'), data.length);
  if (range === 'unsatisfiable') throw new HttpError(416, 'The requested range cannot be satisfied.');
  if (range) {
    status = 206;
    headers['Content-Range'] = `bytes ${range.start}-${range.end}/${data.length}`;
    data = data.subarray(range.start, range.end + 1);
  }
  headers['Content-Length'] = data.length;
  res.writeHead(status, headers);
  if (served.cutAfter === undefined) {
    res.end(data);
    return;
  }
  res.write(data.subarray(0, served.cutAfter), () => res.destroy());
}

function servedBytes(object: FakeGcsObject, outcome: Outcome | undefined): ServedBytes {
  if (outcome?.type === 'corrupt') {
    return { data: flipBytes(object.data), withHashes: outcome.keepHash === true };
  }
  if (outcome?.type === 'truncate') {
    return outcome.cutConnection
      ? { data: object.data, withHashes: true, cutAfter: outcome.bytes }
      : { data: object.data.subarray(0, outcome.bytes), withHashes: false };
  }
  return { data: object.data, withHashes: true };
}

function mediaHeaders(object: FakeGcsObject, withHashes: boolean): Record<string, string | number> {
  const headers: Record<string, string | number> = {
    'Content-Type': object.contentType,
    'x-goog-generation': object.generation,
    'x-goog-metageneration': '1',
    'x-goog-stored-content-length': object.data.length,
    'x-goog-storage-class': 'STANDARD',
    'Accept-Ranges': 'bytes',
  };
  if (withHashes) {
    // The client checks a full download against these, and only when the stored encoding is
    // given: it must know the bytes were not transcoded on the way.
    headers['x-goog-hash'] = `crc32c=${object.crc32c},md5=${object.md5Hash}`;
    headers['x-goog-stored-content-encoding'] = 'identity';
  }
  return headers;
}

/** A single `bytes=` range, as the client sends for partial reads. */
function parseRange(
  value: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(value ?? '');
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    // `bytes=-N`: the last N bytes.
    start = Math.max(size - Number(match[2]), 0);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}
