/** The `multipart/related` body of a multipart upload: a JSON metadata part, then the media part. */
import { HttpError } from './http.js';

export interface MultipartPart {
  contentType?: string;
  body: Buffer;
}

/** As the client writes it: `--boundary`, part headers, blank line, body; `--boundary--` at the end. */
export function parseMultipart(contentType: string, body: Buffer): MultipartPart[] {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!boundary) throw new HttpError(400, `multipart upload without a boundary: ${contentType}`);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: MultipartPart[] = [];
  let at = body.indexOf(delimiter);
  while (at !== -1) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next === -1) throw new HttpError(400, 'multipart body without a closing boundary');
    // Between delimiters: CRLF, headers, CRLF CRLF, body, CRLF.
    const part = body.subarray(start + 2, next - 2);
    const split = part.indexOf('\r\n\r\n');
    if (split === -1) throw new HttpError(400, 'multipart part without headers');
    const headers = part.subarray(0, split).toString('utf8');
    parts.push({
      contentType: /^content-type:\s*(.+)$/im.exec(headers)?.[1].trim(),
      body: part.subarray(split + 4),
    });
    at = next;
  }
  return parts;
}
