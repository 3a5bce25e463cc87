/**
 * Resumable uploads: the session a resumable start opens, and the `PUT`s to its URL that bring
 * the bytes in chunks, each answered 308 with what arrived so far, until the last one stores the
 * object. A client that lost an answer resends from where the server says it is.
 */
import { randomUUID } from 'node:crypto';
import { parseHashHeader, verifyClaimedHashes } from './checksums.js';
import type { Exchange, ServerState, UploadSession } from './context.js';
import { mangleUpload, throwIfStatus } from './faults.js';
import { HttpError, header, sendJson } from './http.js';
import { objectResource } from './object-resource.js';

/** Answers a resumable start with the session URL, in `Location`, that the chunks go to. */
export function openSession(
  state: ServerState,
  exchange: Exchange,
  target: { bucket: string; name: string; contentType: string },
): void {
  const id = randomUUID();
  const declared = header(exchange.req, 'x-upload-content-length');
  state.sessions.set(id, {
    ...target,
    chunks: [],
    received: 0,
    total: declared === undefined ? undefined : Number(declared),
  });
  const location = new URL(exchange.url.pathname, state.baseUrl);
  location.searchParams.set('uploadType', 'resumable');
  location.searchParams.set('name', target.name);
  location.searchParams.set('upload_id', id);
  exchange.res.writeHead(200, { Location: location.href, 'Content-Length': 0 }).end();
}

/** `PUT` to a session URL: a chunk, the last chunk, or a status query. */
export async function continueUpload(state: ServerState, exchange: Exchange): Promise<void> {
  const { req, res, url, body } = exchange;
  const session = state.sessions.get(url.searchParams.get('upload_id') ?? '');
  if (!session) throw new HttpError(404, 'no such upload session');
  Object.assign(exchange.record, { op: 'put-chunk', bucket: session.bucket, name: session.name });
  const outcome = await state.faults.apply('put-chunk', session.bucket, session.name, exchange.gone);
  throwIfStatus(outcome);
  if (session.done) return sendJson(res, 200, objectResource(session.done, state.baseUrl));

  appendChunk(session, header(req, 'content-range'), body);
  if (session.total === undefined || session.received < session.total) {
    // 308 "Resume Incomplete", with the last byte received, or no Range when there is none.
    const headers: Record<string, string | number> = { 'Content-Length': 0 };
    if (session.received > 0) headers.Range = `bytes=0-${session.received - 1}`;
    res.writeHead(308, headers).end();
    return;
  }
  if (session.received > session.total) {
    throw new HttpError(400, `received ${session.received} bytes of an object of ${session.total}`);
  }
  const data = mangleUpload(Buffer.concat(session.chunks), outcome);
  if (!outcome) {
    const hashes = parseHashHeader(header(req, 'x-goog-hash'));
    verifyClaimedHashes(data, hashes.crc32c, hashes.md5);
  }
  session.done = state.objects.put(session.bucket, session.name, data, session.contentType);
  session.chunks = [];
  sendJson(res, 200, objectResource(session.done, state.baseUrl));
}

// Content-Range of a chunk, as the client sends it:
// `bytes */*` or `bytes */N`: a status query, or a last request with no bytes in it.
// `bytes A-B/N`, `bytes A-*/N`, `bytes A-B/*`: bytes from A; N is the total once known.
function appendChunk(session: UploadSession, contentRange: string | undefined, body: Buffer): void {
  const range = /^bytes (?:\*|(\d+)-(\d+|\*))\/(\d+|\*)$/.exec(contentRange ?? '');
  if (!range) throw new HttpError(400, `bad Content-Range ${contentRange}`);
  if (range[3] !== '*') session.total = Number(range[3]);
  if (range[1] === undefined) return;
  const start = Number(range[1]);
  if (start > session.received) {
    throw new HttpError(400, `upload resumes at ${start} but only ${session.received} bytes arrived`);
  }
  // A client resending bytes the server already has: keep the first copy.
  const fresh = body.subarray(session.received - start);
  session.chunks.push(fresh);
  session.received += fresh.length;
}
