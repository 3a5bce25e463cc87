import type { Kysely } from 'kysely';
import type { Config } from '../config.js';
import type { NotificationListener } from '../db/notification-listener.js';
import type { Database } from '../db/types.js';
import type { Clock } from '../domain/clock.js';
import type { ObjectStore } from '../storage/object-store.js';

/**
 * What the job services need, built once by the app (plugins/job-context.ts) and handed to every
 * route and background task of jobs/ and workers/. Settings are read from `config` under their
 * configuration names.
 */
export interface JobContext {
  db: Kysely<Database>;
  store: ObjectStore;
  clock: Clock;
  config: Config;
  /** The endpoints a job may target, in their stored `/v1/...` form. */
  endpoints: ReadonlySet<string>;
  /** LISTENs for job notifications. Absent: status waits answer at once, waiting claims poll. */
  listener?: NotificationListener;
  /** Draws the jitter of retry backoffs; tests fix it. */
  random?: () => number;
}
