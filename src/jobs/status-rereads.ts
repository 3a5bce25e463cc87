import type { Kysely } from 'kysely';
import type { JobLifecycleRow } from '../db/job-columns.js';
import type { Database } from '../db/types.js';
import { findJobLifecyclesByIds } from './job-repository.js';

const MAX_IDS_PER_QUERY = 500;

interface Pending {
  organizationId: string;
  jobId: string;
  resolve: (row: JobLifecycleRow | undefined) => void;
  reject: (error: unknown) => void;
}

export type StatusRereader = (organizationId: string, jobId: string) => Promise<JobLifecycleRow | undefined>;

/**
 * Re-reads for status waiters. One UPDATE of many jobs wakes their waiters in the same tick;
 * reading each job alone would queue a thousand SELECTs behind the pool. Reads asked for in
 * one tick go out together, a few hundred ids per statement. A job of another organization
 * reads as missing, as everywhere else.
 */
export function createStatusRereader(db: Kysely<Database>): StatusRereader {
  let pending: Pending[] = [];

  const flush = async () => {
    const batch = pending;
    pending = [];
    const ids = [...new Set(batch.map((p) => p.jobId))];
    for (let i = 0; i < ids.length; i += MAX_IDS_PER_QUERY) {
      const chunk = new Set(ids.slice(i, i + MAX_IDS_PER_QUERY));
      const waiting = batch.filter((p) => chunk.has(p.jobId));
      try {
        const rows = new Map((await findJobLifecyclesByIds(db, [...chunk])).map((r) => [r.id, r]));
        for (const p of waiting) {
          const row = rows.get(p.jobId);
          p.resolve(row?.organization_id === p.organizationId ? row : undefined);
        }
      } catch (error) {
        for (const p of waiting) p.reject(error);
      }
    }
  };

  return (organizationId, jobId) =>
    new Promise((resolve, reject) => {
      if (pending.length === 0) setImmediate(() => void flush());
      pending.push({ organizationId, jobId, resolve, reject });
    });
}
