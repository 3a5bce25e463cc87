/** An object as the JSON API describes it: the answer to a metadata read and to a finished upload. */
import type { FakeGcsObject } from './object-store.js';

export function objectResource(object: FakeGcsObject, baseUrl: string) {
  const path = `b/${encodeURIComponent(object.bucket)}/o/${encodeURIComponent(object.name)}`;
  return {
    kind: 'storage#object',
    id: `${object.bucket}/${object.name}/${object.generation}`,
    selfLink: `${baseUrl}/storage/v1/${path}`,
    mediaLink: `${baseUrl}/download/storage/v1/${path}?generation=${object.generation}&alt=media`,
    name: object.name,
    bucket: object.bucket,
    generation: object.generation,
    metageneration: '1',
    contentType: object.contentType,
    storageClass: 'STANDARD',
    // GCS sends 64-bit numbers as strings.
    size: String(object.data.length),
    md5Hash: object.md5Hash,
    crc32c: object.crc32c,
    etag: object.md5Hash,
    timeCreated: object.updated,
    updated: object.updated,
  };
}
