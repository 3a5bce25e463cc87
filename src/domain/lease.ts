import type { Problem } from './job-shape.js';

/** What every worker report names: the job, its organization, and the lease the worker holds. */
export interface LeaseRef {
  /** The caller's organization; null for a fleet key, which may report any organization's jobs. */
  organizationId: string | null;
  jobId: string;
  leaseToken: string;
}

/** Where a job goes when its lease ends without a result (a completion is its own statement). */
export type LeaseEnd =
  | { status: 'queued'; runAfter: Date }
  | { status: 'failed'; error: Problem }
  | { status: 'cancelled' };
