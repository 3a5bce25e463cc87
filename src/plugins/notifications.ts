import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import {
  createNotificationListener,
  JOB_CHANGED_CHANNEL,
  JOB_QUEUED_CHANNEL,
  type NotificationListener,
} from '../db/notification-listener.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The LISTEN connection behind status waits and waiting claims; undefined when turned off. */
    listener: NotificationListener | undefined;
  }
}

/**
 * `app.listener`: one LISTEN connection on DATABASE_URL for the job notifications, started now and
 * ended when the app closes. A listener handed in is used as is and left to its owner; `false`
 * runs without one (status waits answer at once, waiting claims look again every second).
 */
export const notificationsPlugin = fp<{ config: Config; listener?: NotificationListener | false }>(
  async (app, { config, listener }) => {
    if (listener !== undefined) {
      app.decorate('listener', listener === false ? undefined : listener);
      return;
    }
    if (!config.databaseUrl) throw new Error('DATABASE_URL is not set and no listener was given');
    const own = createNotificationListener({
      connectionString: config.databaseUrl,
      channels: [JOB_CHANGED_CHANNEL, JOB_QUEUED_CHANNEL],
      logger: app.log,
      applicationName: 'jobs-server-listener',
      connectTimeoutMs: config.databaseConnectTimeoutMs,
    });
    await own.start();
    app.decorate('listener', own);
    // After the routes' preClose hooks have answered the waiting requests.
    app.addHook('onClose', () => own.close());
  },
  { name: 'notifications' },
);
