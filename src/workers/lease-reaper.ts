import type { FastifyBaseLogger } from 'fastify';
import type { Kysely } from 'kysely';
import { type PeriodicTask, startPeriodicTask } from '../background/periodic-task.js';
import type { Database } from '../db/types.js';
import type { BackoffPolicy } from './backoff.js';
import { afterFailedAttempt } from './retry-policy.js';
import { countReleasedAttempts, endLease, finishAttempt, lockExpiredLeases } from './worker-repository.js';

export interface ReaperDeps {
  db: Kysely<Database>;
  now: () => Date;
  backoff: BackoffPolicy;
  batchSize: number;
  random?: () => number;
}

export interface ReapResult {
  requeued: number;
  failed: number;
  cancelled: number;
}

/**
 * Takes back every lease that ran out: the job is queued again after a backoff, fails with
 * `lease_expired` once its attempts are used up, or ends cancelled when cancellation was asked.
 * Batches are locked with SKIP LOCKED, so reapers of several replicas share the work and a
 * worker's report racing with the reaper either lands first or finds its lease gone.
 */
export async function reapExpiredLeases(deps: ReaperDeps): Promise<ReapResult> {
  const total: ReapResult = { requeued: 0, failed: 0, cancelled: 0 };
  for (;;) {
    const now = deps.now();
    const batch = await deps.db.transaction().execute(async (trx) => {
      const jobs = await lockExpiredLeases(trx, now, deps.batchSize);
      const released = await countReleasedAttempts(
        trx,
        jobs.map((j) => j.id),
      );
      const counts: ReapResult = { requeued: 0, failed: 0, cancelled: 0 };
      for (const job of jobs) {
        const error = {
          code: 'lease_expired',
          message: `Attempt ${job.attempt_count} ended: worker '${job.lease_owner}' stopped renewing its lease.`,
        };
        const end = afterFailedAttempt(
          {
            attemptCount: job.attempt_count,
            releasedCount: released.get(job.id) ?? 0,
            maxAttempts: job.max_attempts,
            cancelled: job.cancelled,
          },
          { retryable: true, error },
          { now, backoff: deps.backoff, random: deps.random },
        );
        const lease = { organizationId: job.organization_id, jobId: job.id, leaseToken: job.lease_token };
        await endLease(trx, lease, end, { now, lastFailureCode: 'lease_expired' });
        await finishAttempt(trx, job.lease_token, 'lease_expired', { now, error });
        if (end.status === 'queued') counts.requeued++;
        else if (end.status === 'cancelled') counts.cancelled++;
        else counts.failed++;
      }
      return { size: jobs.length, counts };
    });
    total.requeued += batch.counts.requeued;
    total.failed += batch.counts.failed;
    total.cancelled += batch.counts.cancelled;
    if (batch.size < deps.batchSize) return total;
  }
}

export function startLeaseReaper(
  deps: ReaperDeps & { intervalMs: number; logger: FastifyBaseLogger },
): PeriodicTask {
  return startPeriodicTask({
    name: 'lease reaper',
    intervalMs: deps.intervalMs,
    logger: deps.logger,
    run: async () => {
      const result = await reapExpiredLeases(deps);
      if (result.requeued + result.failed + result.cancelled > 0) {
        deps.logger.info({ task: 'lease reaper', ...result }, 'took back expired worker leases');
      }
    },
  });
}
