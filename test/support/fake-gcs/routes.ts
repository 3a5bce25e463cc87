/** Which handler answers a request, by method and path; anything else is a 400 naming the route. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RecordedRequest, ServerState } from './context.js';
import { closedSignal, HttpError, readBody } from './http.js';
import { deleteObject, listObjects, readBucket, readObject } from './object-routes.js';
import { continueUpload } from './resumable-sessions.js';
import { startUpload } from './uploads.js';

const UPLOAD = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/;
const OBJECT = /^\/storage\/v1\/b\/([^/]+)\/o\/(.+)$/;
const OBJECTS = /^\/storage\/v1\/b\/([^/]+)\/o$/;
const BUCKET = /^\/storage\/v1\/b\/([^/]+)$/;

export async function route(
  state: ServerState,
  req: IncomingMessage,
  res: ServerResponse,
  record: RecordedRequest,
): Promise<void> {
  const url = new URL(req.url ?? '/', state.baseUrl);
  const method = req.method ?? 'GET';
  // Whatever the route, read the body first: answering early would leave the client writing
  // into a connection the server has stopped reading.
  const body = await readBody(req);
  // A delay ends early when the client hangs up or the server stops.
  const gone = AbortSignal.any([state.stopping, closedSignal(res)]);
  const exchange = { req, res, url, body, gone, record };

  let match = UPLOAD.exec(url.pathname);
  if (match && method === 'POST') return startUpload(state, exchange, decodeURIComponent(match[1]));
  // The session URL keeps the upload path; the upload id in its query names the session.
  if (match && method === 'PUT') return continueUpload(state, exchange);

  match = OBJECT.exec(url.pathname);
  if (match) {
    const bucket = decodeURIComponent(match[1]);
    // The client encodes the whole name, `/` included, as one path segment.
    const name = decodeURIComponent(match[2]);
    if (method === 'GET') return readObject(state, exchange, bucket, name);
    if (method === 'DELETE') return deleteObject(state, exchange, bucket, name);
  }

  match = OBJECTS.exec(url.pathname);
  if (match && method === 'GET') return listObjects(state, exchange, decodeURIComponent(match[1]));

  match = BUCKET.exec(url.pathname);
  if (match && method === 'GET') return readBucket(state, exchange, decodeURIComponent(match[1]));

  throw new HttpError(400, `fake GCS server: no route for ${method} ${url.pathname}`);
}
