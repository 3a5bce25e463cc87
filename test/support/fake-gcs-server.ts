/**
 * A small in-memory server speaking the part of the GCS JSON API that `@google-cloud/storage`
 * uses for objects, so tests run the real client (its retries, its checksum validation, its
 * resumable protocol) without a GCS emulator, which cannot be installed on these machines.
 *
 * It is also where faults come from: a status code, a delay, corrupted or truncated bytes, per
 * operation and per object name. See `FaultRule`.
 *
 *   const gcs = await startFakeGcsServer();
 *   const store = new GcsObjectStore({ bucket: 'b', prefix: 'p', apiEndpoint: gcs.url });
 *   const fault = gcs.faults.add({ op: 'get', prefix: 'p/org1/', type: 'status', status: 503, times: 1 });
 *   ...
 *   expect(fault.hits).toBe(1);
 *   await gcs.stop();
 *
 * Any bucket exists unless `buckets` is given. Not implemented: generations/preconditions
 * (answered as if met), ACLs, compose/copy/rewrite, gzip transcoding.
 *
 * The implementation is in `fake-gcs/`, one concern per file (see its README); this file is the
 * one tests import.
 */
export type { RecordedRequest } from './fake-gcs/context.js';
export type { FakeGcsOperation, Fault, FaultAction, FaultRule } from './fake-gcs/faults.js';
export type { FakeGcsObject } from './fake-gcs/object-store.js';
export { type FakeGcsServer, startFakeGcsServer } from './fake-gcs/server.js';
