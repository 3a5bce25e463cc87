/**
 * The JSON API's object and bucket reads and deletes: metadata, media, delete, list, and the
 * bucket itself (which the client asks for in `exists()` checks). Each asks the faults first.
 */
import type { Exchange, ServerState } from './context.js';
import { throwIfStatus } from './faults.js';
import { sendJson } from './http.js';
import { sendMedia } from './media-download.js';
import { listPage } from './object-listing.js';
import { objectResource } from './object-resource.js';

/** `GET …/o/{name}`: the bytes with `alt=media` (op `get`), else the metadata (op `stat`). */
export async function readObject(state: ServerState, exchange: Exchange, bucket: string, name: string) {
  const op = exchange.url.searchParams.get('alt') === 'media' ? 'get' : 'stat';
  Object.assign(exchange.record, { op, bucket, name });
  const outcome = await state.faults.apply(op, bucket, name, exchange.gone);
  throwIfStatus(outcome);
  const object = state.objects.find(bucket, name);
  if (op === 'get') sendMedia(exchange, object, outcome);
  else sendJson(exchange.res, 200, objectResource(object, state.baseUrl));
}

export async function deleteObject(state: ServerState, exchange: Exchange, bucket: string, name: string) {
  Object.assign(exchange.record, { op: 'delete', bucket, name });
  throwIfStatus(await state.faults.apply('delete', bucket, name, exchange.gone));
  state.objects.find(bucket, name);
  state.objects.delete(bucket, name);
  exchange.res.writeHead(204).end();
}

/** `GET …/o?prefix=…`: faults match the prefix as if it were the object name. */
export async function listObjects(state: ServerState, exchange: Exchange, bucket: string) {
  const { searchParams } = exchange.url;
  const prefix = searchParams.get('prefix') ?? '';
  Object.assign(exchange.record, { op: 'list', bucket, name: prefix });
  throwIfStatus(await state.faults.apply('list', bucket, prefix, exchange.gone));
  sendJson(exchange.res, 200, listPage(state.objects, bucket, searchParams, state.baseUrl));
}

/** `GET /storage/v1/b/{bucket}`: not recorded as an operation, and no faults apply. */
export function readBucket(state: ServerState, exchange: Exchange, bucket: string): void {
  state.objects.requireBucket(bucket);
  sendJson(exchange.res, 200, { kind: 'storage#bucket', id: bucket, name: bucket, location: 'US' });
}
