/**
 * One page of `GET /storage/v1/b/{bucket}/o`: objects by prefix, folded into `prefixes` at the
 * delimiter, at most `maxResults` entries, the next page's start in an opaque `pageToken`.
 */

import { objectResource } from './object-resource.js';
import type { FakeGcsObject, ObjectStore } from './object-store.js';

export function listPage(objects: ObjectStore, bucket: string, params: URLSearchParams, baseUrl: string) {
  objects.requireBucket(bucket);
  const prefix = params.get('prefix') ?? '';
  const delimiter = params.get('delimiter') ?? '';
  const maxResults = Number(params.get('maxResults') ?? 1000);
  // The token is the last name of the previous page.
  const after = params.get('pageToken')
    ? Buffer.from(params.get('pageToken') ?? '', 'base64url').toString()
    : '';
  const candidates = objects.list(bucket).filter((o) => o.name.startsWith(prefix) && o.name > after);
  const items: FakeGcsObject[] = [];
  const prefixes = new Set<string>();
  let last = '';
  for (const object of candidates) {
    if (items.length + prefixes.size >= maxResults) {
      return page(items, prefixes, last, baseUrl);
    }
    const cut = delimiter ? object.name.indexOf(delimiter, prefix.length) : -1;
    if (cut >= 0) prefixes.add(object.name.slice(0, cut + delimiter.length));
    else items.push(object);
    last = object.name;
  }
  return page(items, prefixes, undefined, baseUrl);
}

function page(items: FakeGcsObject[], prefixes: Set<string>, last: string | undefined, baseUrl: string) {
  return {
    kind: 'storage#objects',
    items: items.map((object) => objectResource(object, baseUrl)),
    ...(prefixes.size > 0 ? { prefixes: [...prefixes] } : {}),
    ...(last === undefined ? {} : { nextPageToken: Buffer.from(last).toString('base64url') }),
  };
}
