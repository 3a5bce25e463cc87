import fp from 'fastify-plugin';
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
    app.addHook('onReady', async () => {
      tasks.push(startLeaseReaper(app.jobs, app.log), startExpirySweeper(app.jobs, app.log));
    });
    app.addHook('preClose', async () => {
      await Promise.all(tasks.map((task) => task.stop()));
    });
  },
  { name: 'background-tasks', dependencies: ['job-context'] },
);
