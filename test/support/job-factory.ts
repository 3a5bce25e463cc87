import type { JobStatus } from '../../src/domain/job-statuses.js';
import { createJob } from '../../src/jobs/job-creator.js';
import { toArtifactRows } from '../../src/lifecycle/artifact-rows.js';
import { offloadDocument } from '../../src/storage/artifact-offloader.js';
import type { TestContext } from './test-app.js';

export interface SeedOptions {
  endpoint?: string;
  request?: Record<string, unknown>;
  metadata?: Record<string, string> | null;
  maxAttempts?: number;
  /** Creation time (default: now): orders claims and lists. */
  at?: Date;
  status?: JobStatus;
  /** Stored as the completed job's response, offloaded like a worker's result. */
  response?: { status_code: number; body: unknown };
  error?: { code: string; message: string; details?: Record<string, unknown> };
  warnings?: { code: string; message: string; details?: Record<string, unknown> }[];
}

/** A base64 data URL of `size` pseudo-random bytes. */
export function dataUrl(size: number, mime = 'application/pdf', seed = 1): { url: string; bytes: Buffer } {
  const bytes = Buffer.alloc(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    bytes[i] = x >> 16;
  }
  return { url: `data:${mime};base64,${bytes.toString('base64')}`, bytes };
}

/**
 * The one job factory of the tests: creates a job through the real creation path (offloading
 * included), then moves it to the wanted state the way the worker protocol would leave it.
 */
export async function seedJob(ctx: TestContext, organizationId: string, options: SeedOptions = {}) {
  const request = options.request ?? {
    document: { filename: 'a.txt', url: 'data:text/plain;base64,aGVsbG8=' },
  };
  const at = options.at;
  const { row } = await createJob(at ? { ...ctx.jobs, clock: { now: () => at } } : ctx.jobs, {
    organizationId,
    endpoint: options.endpoint ?? '/v1/documents/extract',
    request: structuredClone(request),
    metadata: options.metadata ?? null,
    maxAttempts: options.maxAttempts,
  });
  const status = options.status ?? 'queued';
  if (status === 'queued' && !options.response && !options.error && !options.warnings) return row;

  let response: unknown = null;
  if (options.response) {
    const offloaded = await offloadDocument(ctx.store, structuredClone(options.response), {
      keyPrefix: `${organizationId}/${row.id}`,
      role: 'response',
      settings: ctx.config,
    });
    response = offloaded.stored;
    if (offloaded.artifacts.length > 0) {
      await ctx.db.insertInto('job_artifacts').values(toArtifactRows(row.id, offloaded.artifacts)).execute();
    }
  }
  const started = status !== 'queued' && status !== 'validating';
  const terminal = ['completed', 'failed', 'cancelled', 'expired'].includes(status);
  const now = new Date();
  await ctx.db
    .updateTable('jobs')
    .set({
      status,
      response: response === null ? null : JSON.stringify(response),
      error: options.error ? JSON.stringify(options.error) : null,
      warnings: options.warnings ? JSON.stringify(options.warnings) : null,
      started_at: started ? now : null,
      last_attempt_at: started ? now : null,
      attempt_count: started ? 1 : 0,
      completed_at: terminal ? now : null,
      last_failure_code: options.error?.code ?? null,
    })
    .where('id', '=', row.id)
    .execute();
  return row;
}
