import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dataUrl, seedJob } from '../support/job-factory.js';
import { createTenant, useTestApp } from '../support/test-app.js';

// The app on the file store with FIFOs in place of artifacts. Before the store refused special
// files, each read of a FIFO held one of libuv's four threads in open() for good: it timed out
// correctly, but from the fifth on a healthy artifact came back null with a false `timeout`, and
// a create with a document hung, since writing a file needs the same threads.

/** Long, so that a read waiting for a free thread would show as a slow answer, not as a warning. */
const RESTORE_TIMEOUT_MS = 5000;
const ctx = useTestApp({
  env: { OFFLOAD_THRESHOLD_BYTES: '1024', RESTORE_TIMEOUT_MS: String(RESTORE_TIMEOUT_MS) },
});
let tenant: Awaited<ReturnType<typeof createTenant>>;
const fifos: string[] = [];

beforeAll(async () => {
  tenant = await createTenant(ctx.db);
});
afterEach(() => {
  // Only a regression would leave a reader blocked: a writer lets it end, so later tests run.
  for (const fifo of fifos.splice(0)) {
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO') throw error;
    }
  }
});

const documents = (count: number, seed: number) => ({
  documents: Array.from({ length: count }, (_, i) => ({
    filename: `doc-${i}.pdf`,
    url: dataUrl(2000 + i, 'application/pdf', seed + i).url,
  })),
});

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
}

const retrieve = (jobId: string) =>
  ctx.app.inject({
    url: `/v1/jobs/${jobId}?include_request=true`,
    headers: { 'api-key': tenant.key },
  });

/** Replaces every artifact of the job by a FIFO nothing writes to. */
async function fifosInPlaceOfArtifacts(jobId: string): Promise<string[]> {
  const rows = await ctx.db
    .selectFrom('job_artifacts')
    .select('storage_uri')
    .where('job_id', '=', jobId)
    .execute();
  for (const { storage_uri } of rows) {
    const file = fileURLToPath(storage_uri);
    await rm(file);
    execFileSync('mkfifo', [file]);
    fifos.push(file);
  }
  return rows.map((r) => r.storage_uri);
}

describe('FIFOs in place of artifacts on the file store', () => {
  it('are storage errors at once, and healthy restores and creates keep working', async () => {
    const broken = await seedJob(ctx, tenant.organizationId, { request: documents(8, 100) });
    const uris = await fifosInPlaceOfArtifacts(broken.id);
    expect(uris).toHaveLength(8);
    const healthyRequest = documents(3, 200);
    const healthy = await seedJob(ctx, tenant.organizationId, { request: healthyRequest });

    // Three restores of eight FIFOs each: 24 reads that would each have kept a thread for good.
    for (let round = 0; round < 3; round++) {
      const { value: res, ms } = await timed(() => retrieve(broken.id));
      expect(res.statusCode).toBe(200);
      const warnings: { details: { reason: string; storage_uri: string } }[] = res.json().warnings;
      expect(warnings.map((w) => w.details.reason)).toEqual(Array(8).fill('storage_error'));
      expect(warnings.map((w) => w.details.storage_uri).sort()).toEqual([...uris].sort());
      expect(res.json().request.documents.every((d: { url: unknown }) => d.url === null)).toBe(true);
      expect(ms).toBeLessThan(RESTORE_TIMEOUT_MS / 2);
    }

    const { value: restored, ms: restoreMs } = await timed(() => retrieve(healthy.id));
    expect(restored.json().warnings).toBeNull();
    expect(restored.json().request).toEqual(healthyRequest);
    expect(restoreMs).toBeLessThan(1000);

    const request = documents(2, 300);
    const { value: created, ms: createMs } = await timed(() =>
      ctx.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: { 'api-key': tenant.key, 'content-type': 'application/json' },
        payload: JSON.stringify({ endpoint: '/v1/documents/extract', request }),
      }),
    );
    expect(created.statusCode).toBe(201);
    expect(Object.keys(created.json().request_gcs_paths)).toHaveLength(2);
    expect(createMs).toBeLessThan(1000);
    expect((await retrieve(created.json().id)).json().request).toEqual(request);
  });
});
