import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import type { Clock } from '../domain/clock.js';
import { BUILTIN_ENDPOINTS } from '../domain/endpoints.js';
import type { JobContext } from '../jobs/job-context.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** What every job route and background task works with. */
    jobs: JobContext;
  }
}

/** `app.jobs`: the one place the job services' dependencies are put together. */
export const jobContextPlugin = fp<{ config: Config; clock: Clock; random?: () => number }>(
  async (app, { config, clock, random }) => {
    app.decorate('jobs', {
      db: app.db,
      store: app.store,
      listener: app.listener,
      clock,
      config,
      endpoints: new Set([...BUILTIN_ENDPOINTS, ...config.extraEndpoints]),
      random,
    });
  },
  { name: 'job-context', dependencies: ['database', 'object-store', 'notifications'] },
);
