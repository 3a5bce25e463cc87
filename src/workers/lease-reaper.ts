import type { FastifyBaseLogger } from 'fastify';
import type { JobContext } from '../jobs/job-context.js';
import { type PeriodicTask, startPeriodicTask } from '../lib/periodic-task.js';
import { endAttempts } from '../lifecycle/lease-endings.js';
import { lockExpiredLeases } from '../lifecycle/lease-repository.js';

export interface ReapResult {
  requeued: number;
  failed: number;
  cancelled: number;
}

/**
 * Takes back every lease that ran out: the job is queued again after a backoff, fails with
 * `lease_expired` once its attempts are used up, or ends cancelled when cancellation was asked.
 * Batches of REAPER_BATCH_SIZE are locked with SKIP LOCKED, so reapers of several replicas share
 * the work and a worker's report racing with the reaper either lands first or finds its lease gone.
 */
export async function reapExpiredLeases(ctx: Pick<JobContext, 'db' | 'clock' | 'config' | 'random'>) {
  const batchSize = ctx.config.reaperBatchSize;
  const total: ReapResult = { requeued: 0, failed: 0, cancelled: 0 };
  for (;;) {
    const now = ctx.clock.now();
    const ended = await ctx.db.transaction().execute(async (trx) => {
      const jobs = await lockExpiredLeases(trx, now, batchSize);
      const rows = await endAttempts(
        trx,
        jobs.map((job) => ({
          job,
          attemptEnd: {
            kind: 'failed' as const,
            outcome: 'lease_expired' as const,
            retryable: true,
            error: {
              code: 'lease_expired',
              message: `Attempt ${job.attempt_count} ended: worker '${job.lease_owner}' stopped renewing its lease.`,
            },
          },
        })),
        { now, settings: ctx.config, random: ctx.random },
      );
      return rows.map((row) => row.status);
    });
    for (const status of ended) {
      if (status === 'queued') total.requeued++;
      else if (status === 'cancelled') total.cancelled++;
      else total.failed++;
    }
    if (ended.length < batchSize) return total;
  }
}

export function startLeaseReaper(
  ctx: JobContext,
  logger: FastifyBaseLogger,
  onError?: (error: unknown, task: string) => void,
): PeriodicTask {
  return startPeriodicTask({
    onError,
    name: 'lease reaper',
    intervalMs: ctx.config.reaperIntervalSeconds * 1000,
    logger,
    run: async () => {
      const result = await reapExpiredLeases(ctx);
      if (result.requeued + result.failed + result.cancelled > 0) {
        logger.info({ task: 'lease reaper', ...result }, 'took back expired worker leases');
      }
    },
  });
}
