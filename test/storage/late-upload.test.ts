import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sweepExpiredJobs } from '../../src/jobs/expiry-sweeper.js';
import type { ObjectStore, StoredObject } from '../../src/storage/object-store.js';
import { INTENT_MARGIN_MS } from '../../src/storage/offloaded-write.js';
import { dataUrl } from '../support/job-factory.js';
import { type BackendKind, type StorageBackend, startStorageBackend } from '../support/storage-backends.js';
import { createTenant, createTestApp, type TestContext } from '../support/test-app.js';
import { testClock, until } from '../workers/worker-helpers.js';

// An upload that outlives STORAGE_WRITE_TIMEOUT_MS and is stored all the same, after the create
// answered 503: no row will ever name its object, and nothing did delete it before intents.
// Its intent does: once the sweeper runs past the grace period, the object is gone.

const WRITE_TIMEOUT_MS = 300;
/** How long storage takes to store the upload: well past the timeout. */
const LANDS_AFTER_MS = 1200;

/**
 * A file store whose puts of `slowPrefix` keys take LANDS_AFTER_MS and then store the object
 * whatever their caller's signal says: a disk that finishes a write nobody waits for any more.
 */
function slowDisk(inner: ObjectStore, slowPrefix: () => string | undefined): ObjectStore {
  return {
    baseUri: inner.baseUri,
    uriOf: (key) => inner.uriOf(key),
    async put(key, bytes, options): Promise<StoredObject> {
      const prefix = slowPrefix();
      if (!prefix || !key.startsWith(prefix)) return inner.put(key, bytes, options);
      await sleep(LANDS_AFTER_MS);
      return inner.put(key, bytes, { contentType: options.contentType });
    },
    get: (uri, options) => inner.get(uri, options),
    delete: (uri, options) => inner.delete(uri, options),
  };
}

describe.each(['file', 'gcs'] as BackendKind[])(
  'an upload that lands after its timeout, %s store',
  (kind) => {
    let backend: StorageBackend;
    let ctx: TestContext;
    let slowPrefix: string | undefined;
    const clock = testClock();

    beforeAll(async () => {
      backend = await startStorageBackend(kind);
      const store = kind === 'file' ? slowDisk(backend.store, () => slowPrefix) : backend.store;
      ctx = await createTestApp({
        store,
        clock,
        env: { OFFLOAD_THRESHOLD_BYTES: '1024', STORAGE_WRITE_TIMEOUT_MS: String(WRITE_TIMEOUT_MS) },
      });
    });
    afterEach(() => {
      slowPrefix = undefined;
      backend.gcs?.faults.clear();
    });
    afterAll(async () => {
      await ctx?.close();
      await backend?.close();
    });

    /** Makes the uploads of this organization slow: on GCS the server stores them after the client gave up. */
    const slowUploadsOf = (organizationId: string) => {
      slowPrefix = `${organizationId}/`;
      backend.gcs?.faults.add({
        op: 'put',
        prefix: `artifacts/${organizationId}/`,
        type: 'delay',
        ms: LANDS_AFTER_MS,
        outlivesClient: true,
      });
    };

    const objectsOf = async (organizationId: string) =>
      (await backend.objectUris()).filter((uri) => uri.includes(`/${organizationId}/`));

    const rowsOf = async (organizationId: string) => ({
      jobs: (
        await ctx.db.selectFrom('jobs').select('id').where('organization_id', '=', organizationId).execute()
      ).length,
      intents: (await ctx.db.selectFrom('storage_intents').select('storage_uri').execute()).filter((r) =>
        r.storage_uri.includes(`/${organizationId}/`),
      ).length,
      deletions: (await ctx.db.selectFrom('storage_deletions').select('storage_uri').execute()).filter((r) =>
        r.storage_uri.includes(`/${organizationId}/`),
      ).length,
    });

    it('leaves nothing once the sweeper ran past the grace period', async () => {
      const tenant = await createTenant(ctx.db);
      slowUploadsOf(tenant.organizationId);
      const started = performance.now();
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: { 'api-key': tenant.key, 'content-type': 'application/json' },
        payload: JSON.stringify({
          endpoint: '/v1/documents/extract',
          request: { document: { filename: 'a.pdf', url: dataUrl(5000, 'application/pdf', 7).url } },
        }),
      });
      expect(res.statusCode).toBe(503);
      expect(performance.now() - started).toBeLessThan(LANDS_AFTER_MS);
      expect(await rowsOf(tenant.organizationId)).toEqual({ jobs: 0, intents: 1, deletions: 0 });

      // The upload lands after the 503: an object no row names.
      await until(async () => (await objectsOf(tenant.organizationId)).length === 1, LANDS_AFTER_MS + 5000);
      const [late] = await objectsOf(tenant.organizationId);
      expect(late).toMatch(/\/request\/0\.bin$/);

      // Before the deadline the sweeper leaves it: the upload might still be on its way.
      await sweepExpiredJobs({ ...ctx.jobs, clock });
      expect(await objectsOf(tenant.organizationId)).toEqual([late]);
      expect(await rowsOf(tenant.organizationId)).toEqual({ jobs: 0, intents: 1, deletions: 0 });

      clock.advance((INTENT_MARGIN_MS + 60_000) / 1000);
      const swept = await sweepExpiredJobs({ ...ctx.jobs, clock });
      expect(swept).toMatchObject({ abandoned: 1, objectsDeleted: 1, objectsFailed: 0 });
      expect(await objectsOf(tenant.organizationId)).toEqual([]);
      expect(await rowsOf(tenant.organizationId)).toEqual({ jobs: 0, intents: 0, deletions: 0 });
      expect(await backend.emptyFolders()).toEqual([]);
    });
  },
);
