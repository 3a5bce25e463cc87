/**
 * `POST /upload/storage/v1/b/{bucket}/o`: a whole object in one request (`uploadType=multipart`
 * or `media`), or the start of a resumable upload, whose bytes then go to `resumable-sessions.ts`.
 */
import { verifyClaimedHashes } from './checksums.js';
import type { Exchange, ServerState } from './context.js';
import { mangleUpload, throwIfStatus } from './faults.js';
import { HttpError, header, sendJson } from './http.js';
import { parseMultipart } from './multipart.js';
import { objectResource } from './object-resource.js';
import { openSession } from './resumable-sessions.js';

/** What the client says about the object; `crc32c` and `md5Hash` are its claim about the bytes. */
interface UploadMetadata {
  name?: string;
  contentType?: string;
  crc32c?: string;
  md5Hash?: string;
}

export async function startUpload(state: ServerState, exchange: Exchange, bucket: string): Promise<void> {
  const { req, res, url, body } = exchange;
  const uploadType = url.searchParams.get('uploadType');
  const { metadata, media } = parseUploadBody(uploadType, req.headers['content-type'] ?? '', body);
  const name = url.searchParams.get('name') ?? metadata.name;
  if (!name) throw new HttpError(400, 'upload without an object name');
  Object.assign(exchange.record, { op: 'put', bucket, name });
  state.objects.requireBucket(bucket);

  const outcome = await state.faults.apply('put', bucket, name, exchange.gone);
  throwIfStatus(outcome);
  // A resumable start carries the media type in a header (its own body is JSON), a media upload
  // in Content-Type; a multipart one in the metadata or the media part.
  const contentType =
    metadata.contentType ??
    (uploadType === 'resumable' ? header(req, 'x-upload-content-type') : undefined) ??
    (uploadType === 'media' ? header(req, 'content-type') : undefined) ??
    '';

  if (uploadType === 'resumable') {
    // Bytes-changing faults of the start request have nothing to change: no bytes yet.
    openSession(state, exchange, { bucket, name, contentType: contentType || 'application/octet-stream' });
    return;
  }
  const data = mangleUpload(media, outcome);
  // A fault that changed the bytes makes the server answer checksums of what it stored, so the
  // client notices; the real server would have refused the claim.
  if (!outcome) verifyClaimedHashes(data, metadata.crc32c, metadata.md5Hash);
  const object = state.objects.put(bucket, name, data, contentType || 'application/octet-stream');
  sendJson(res, 200, objectResource(object, state.baseUrl));
}

/** The metadata and bytes of the request, by upload type; a resumable start has metadata only. */
function parseUploadBody(
  uploadType: string | null,
  contentType: string,
  body: Buffer,
): { metadata: UploadMetadata; media: Buffer } {
  if (uploadType === 'multipart') {
    const parts = parseMultipart(contentType, body);
    if (parts.length !== 2) throw new HttpError(400, `multipart upload with ${parts.length} parts`);
    const metadata: UploadMetadata = JSON.parse(parts[0].body.toString('utf8'));
    metadata.contentType ??= parts[1].contentType;
    return { metadata, media: parts[1].body };
  }
  if (uploadType === 'resumable') {
    return { metadata: body.length > 0 ? JSON.parse(body.toString('utf8')) : {}, media: body };
  }
  if (uploadType === 'media') return { metadata: {}, media: body };
  throw new HttpError(400, `unsupported uploadType ${uploadType}`);
}
