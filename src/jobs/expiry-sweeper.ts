import type { FastifyBaseLogger } from 'fastify';
import type { Kysely } from 'kysely';
import { startPeriodicTask } from '../background/periodic-task.js';
import { mapWithConcurrency, withTimeout } from '../concurrency.js';
import type { Database } from '../db/types.js';
import type { ObjectStore } from '../storage/object-store.js';
import {
  postponeStorageDeletion,
  removeStorageDeletions,
  takeDueStorageDeletions,
} from '../storage/storage-deletion-repository.js';
import { expireDueJobs } from './expiry-repository.js';

export interface ExpirySweeperDeps {
  db: Kysely<Database>;
  store: ObjectStore;
  now: () => Date;
  batchSize?: number;
  /** Batches per sweep at most, so one sweep never runs for ever behind a large backlog. */
  maxBatches?: number;
  deleteConcurrency?: number;
  deleteTimeoutMs?: number;
}

export interface SweepResult {
  expired: number;
  objectsDeleted: number;
  objectsFailed: number;
}

// A sweeper that dies after taking deletions leaves them due again after this long.
const DELETION_LEASE_SECONDS = 300;
const MAX_RETRY_DELAY_SECONDS = 3600;

/**
 * Retention: expires jobs whose expires_at passed, then deletes the objects queued for
 * deletion (theirs, and those a failed create or completion could not delete at once).
 * Every step is a short statement; objects are deleted outside any transaction.
 */
export async function sweepExpiredJobs(deps: ExpirySweeperDeps): Promise<SweepResult> {
  const batchSize = deps.batchSize ?? 500;
  const maxBatches = deps.maxBatches ?? 20;
  const result: SweepResult = { expired: 0, objectsDeleted: 0, objectsFailed: 0 };

  for (let i = 0; i < maxBatches; i++) {
    const expired = await expireDueJobs(deps.db, deps.now(), batchSize);
    result.expired += expired;
    if (expired < batchSize) break;
  }

  for (let i = 0; i < maxBatches; i++) {
    const now = deps.now();
    const due = await takeDueStorageDeletions(deps.db, now, batchSize, DELETION_LEASE_SECONDS);
    const outcomes = await mapWithConcurrency(due, deps.deleteConcurrency ?? 16, async (d) => {
      try {
        await withTimeout(() => deps.store.delete(d.storage_uri), deps.deleteTimeoutMs ?? 10_000);
        return undefined;
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
    });
    await removeStorageDeletions(
      deps.db,
      due.filter((_, j) => outcomes[j] === undefined).map((d) => d.id),
    );
    for (const [j, d] of due.entries()) {
      const error = outcomes[j];
      if (error === undefined) continue;
      const delaySeconds = Math.min(2 ** d.attempts * 10, MAX_RETRY_DELAY_SECONDS);
      await postponeStorageDeletion(deps.db, d.id, new Date(now.getTime() + delaySeconds * 1000), error);
    }
    result.objectsDeleted += outcomes.filter((o) => o === undefined).length;
    result.objectsFailed += outcomes.filter((o) => o !== undefined).length;
    if (due.length < batchSize) break;
  }
  return result;
}

export function startExpirySweeper(
  deps: ExpirySweeperDeps & { intervalMs: number; logger: FastifyBaseLogger },
) {
  return startPeriodicTask({
    name: 'expiry sweeper',
    intervalMs: deps.intervalMs,
    logger: deps.logger,
    run: async () => {
      const result = await sweepExpiredJobs(deps);
      if (result.expired + result.objectsDeleted + result.objectsFailed > 0) {
        deps.logger.info(result, 'expiry sweep');
      }
    },
  });
}
