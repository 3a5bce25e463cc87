import type { Db } from '../db/types.js';
import { findLimitedOrganizations } from '../lifecycle/claim-repository.js';

const REFRESH_MS = 1_000;

/**
 * Which organizations have a max_in_flight, as last read (at most REFRESH_MS ago): whether a
 * claim needs the transaction that takes their claim locks. A stale answer never lets a limit
 * be exceeded — the claim statement itself leaves alone a limited organization it holds no lock
 * for — it only delays a new limit's organization's claims until the next read.
 */
export function createLimitedOrganizations(db: Db, refreshMs = REFRESH_MS) {
  let known = new Set<string>();
  let readAt = Number.NEGATIVE_INFINITY;
  let reading: Promise<void> | undefined;
  const refresh = async () => {
    if (performance.now() - readAt < refreshMs) return;
    reading ??= findLimitedOrganizations(db)
      .then((ids) => {
        known = new Set(ids);
        readAt = performance.now();
      })
      .finally(() => {
        reading = undefined;
      });
    await reading;
  };
  return {
    /** Whether a claim of these organizations (null: all) may touch a limited one. */
    async anyAmong(organizationIds: readonly string[] | null): Promise<boolean> {
      await refresh();
      if (organizationIds === null) return known.size > 0;
      return organizationIds.some((id) => known.has(id));
    },
  };
}

export type LimitedOrganizations = ReturnType<typeof createLimitedOrganizations>;
