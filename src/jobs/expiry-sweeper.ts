import type { FastifyBaseLogger } from 'fastify';
import { backoffDelayMs } from '../domain/backoff.js';
import { mapWithConcurrency, withTimeout } from '../lib/concurrency.js';
import { type PeriodicTask, startPeriodicTask } from '../lib/periodic-task.js';
import { expireDueJobs } from '../lifecycle/expiry-repository.js';
import {
  postponeStorageDeletion,
  removeStorageDeletions,
  takeDueStorageDeletions,
} from '../storage/storage-deletion-repository.js';
import { abandonOverdueIntents } from '../storage/storage-intent-repository.js';
import type { JobContext } from './job-context.js';

export interface SweepOptions {
  batchSize?: number;
  /** Batches per sweep at most, so one sweep never runs for ever behind a large backlog. */
  maxBatches?: number;
  deleteConcurrency?: number;
  deleteTimeoutMs?: number;
}

export interface SweepResult {
  expired: number;
  /** Intents whose deadline passed unclaimed: their objects were queued for deletion. */
  abandoned: number;
  objectsDeleted: number;
  objectsFailed: number;
}

// A sweeper that dies after taking deletions leaves them due again after this long.
const DELETION_LEASE_SECONDS = 300;
const DELETION_RETRY = { baseMs: 10_000, maxMs: 3_600_000 };

/**
 * Retention: expires jobs whose expires_at passed, queues the objects of intents whose deadline
 * passed unclaimed (writes that never committed), then deletes the objects queued for deletion
 * (theirs, and those a failed create or completion could not delete at once).
 * Every step is a short statement; objects are deleted outside any transaction.
 */
export async function sweepExpiredJobs(
  ctx: Pick<JobContext, 'db' | 'store' | 'clock'>,
  options: SweepOptions = {},
): Promise<SweepResult> {
  const { db, store, clock } = ctx;
  const batchSize = options.batchSize ?? 500;
  const maxBatches = options.maxBatches ?? 20;
  const result: SweepResult = { expired: 0, abandoned: 0, objectsDeleted: 0, objectsFailed: 0 };

  for (let i = 0; i < maxBatches; i++) {
    const expired = await expireDueJobs(db, clock.now(), batchSize);
    result.expired += expired;
    if (expired < batchSize) break;
  }

  for (let i = 0; i < maxBatches; i++) {
    const abandoned = await abandonOverdueIntents(db, clock.now(), batchSize);
    result.abandoned += abandoned;
    if (abandoned < batchSize) break;
  }

  for (let i = 0; i < maxBatches; i++) {
    const now = clock.now();
    const due = await takeDueStorageDeletions(db, now, batchSize, DELETION_LEASE_SECONDS);
    const outcomes = await mapWithConcurrency(due, options.deleteConcurrency ?? 16, async (d) => {
      try {
        await withTimeout(() => store.delete(d.storage_uri), options.deleteTimeoutMs ?? 10_000);
        return undefined;
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
    });
    await removeStorageDeletions(
      db,
      due.filter((_, j) => outcomes[j] === undefined).map((d) => d.id),
    );
    for (const [j, d] of due.entries()) {
      const error = outcomes[j];
      if (error === undefined) continue;
      const delayMs = backoffDelayMs(d.attempts, DELETION_RETRY);
      await postponeStorageDeletion(db, d.id, new Date(now.getTime() + delayMs), error);
    }
    result.objectsDeleted += outcomes.filter((o) => o === undefined).length;
    result.objectsFailed += outcomes.filter((o) => o !== undefined).length;
    if (due.length < batchSize) break;
  }
  return result;
}

export function startExpirySweeper(
  ctx: JobContext,
  logger: FastifyBaseLogger,
  onError?: (error: unknown, task: string) => void,
): PeriodicTask {
  return startPeriodicTask({
    onError,
    name: 'expiry sweeper',
    intervalMs: ctx.config.expirySweepIntervalSeconds * 1000,
    logger,
    run: async () => {
      const result = await sweepExpiredJobs(ctx);
      if (result.expired + result.abandoned + result.objectsDeleted + result.objectsFailed > 0) {
        logger.info(result, 'expiry sweep');
      }
    },
  });
}
