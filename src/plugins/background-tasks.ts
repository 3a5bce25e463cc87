import fp from 'fastify-plugin';
import { describeDatabaseError, isDatabaseUnreachable, isStatementCancelled } from '../db/database-errors.js';
import { startExpirySweeper } from '../jobs/expiry-sweeper.js';
import type { PeriodicTask } from '../lib/periodic-task.js';
import { startLeaseReaper } from '../workers/lease-reaper.js';

/**
 * The lease reaper and the expiry sweeper, started once the app is ready and stopped (a run in
 * progress finishes) when it closes, before the database it uses.
 */
export const backgroundTasksPlugin = fp(
  async (app) => {
    const tasks: PeriodicTask[] = [];
    // During a database outage every tick fails: the health tracker says so once, not each tick.
    const onError = (error: unknown, task: string) => {
      if (app.databaseHealth && isDatabaseUnreachable(error)) return app.databaseHealth.failed(error);
      if (isStatementCancelled(error))
        return app.log.warn({ task, reason: describeDatabaseError(error) }, `${task} ran out of time`);
      app.log.error({ err: error, task }, `${task} failed; retrying at the next tick`);
    };
    app.addHook('onReady', async () => {
      tasks.push(
        startLeaseReaper(app.jobs, app.log, onError),
        startExpirySweeper(app.jobs, app.log, onError),
      );
    });
    app.addHook('preClose', async () => {
      await Promise.all(tasks.map((task) => task.stop()));
    });
  },
  { name: 'background-tasks', dependencies: ['job-context'] },
);
