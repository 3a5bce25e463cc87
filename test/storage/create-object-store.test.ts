import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createObjectStore } from '../../src/storage/create-object-store.js';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import { GcsObjectStore } from '../../src/storage/gcs-store.js';

describe('createObjectStore', () => {
  it.each([
    ['gs://my-bucket', 'gs://my-bucket'],
    ['gs://my-bucket/', 'gs://my-bucket'],
    ['gs://my-bucket/jobs', 'gs://my-bucket/jobs'],
    ['gs://my-bucket/jobs/prod/', 'gs://my-bucket/jobs/prod'],
    ['gs://my.bucket_1/a//b', 'gs://my.bucket_1/a/b'],
  ])('reads %s as a GCS store based at %s', (storageUrl, baseUri) => {
    const store = createObjectStore({
      storageUrl,
      gcsApiEndpoint: 'http://127.0.0.1:1',
      gcsProjectId: 'test',
    });
    expect(store).toBeInstanceOf(GcsObjectStore);
    expect(store.baseUri).toBe(baseUri);
  });

  it('reads file:///dir as a filesystem store', () => {
    const store = createObjectStore({ storageUrl: 'file:///var/lib/jobs/artifacts' });
    expect(store).toBeInstanceOf(FilesystemObjectStore);
    expect(store.baseUri).toBe('file:///var/lib/jobs/artifacts');
  });

  it('accepts the unencoded URL the config builds from a path with spaces', () => {
    const store = createObjectStore({ storageUrl: 'file:///srv/my data/artifacts' });
    expect(store.baseUri).toBe(pathToFileURL('/srv/my data/artifacts').href);
  });

  it('accepts file://localhost/dir', () => {
    expect(createObjectStore({ storageUrl: 'file://localhost/srv/artifacts' }).baseUri).toBe(
      'file:///srv/artifacts',
    );
  });

  it('resolves file://relative/dir against the working directory', () => {
    const store = createObjectStore({ storageUrl: 'file://.data/artifacts' });
    expect(store.baseUri).toBe(pathToFileURL(path.resolve('.data/artifacts')).href);
  });

  it.each([
    '/var/lib/jobs',
    's3://bucket/prefix',
    'https://storage.googleapis.com/bucket',
    'gs://',
    'gs://UPPER',
    'gs://a',
    'gs://bucket/../x',
    'gs://bucket/prefix?x=1',
    'file://',
    'file:///',
    'file:/var/lib/jobs',
    'file:///dir#frag',
    '',
  ])('refuses %j with an error naming STORAGE_URL', (storageUrl) => {
    expect(() => createObjectStore({ storageUrl })).toThrow(/^STORAGE_URL:/);
  });
});
