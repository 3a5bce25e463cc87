import type { FastifyBaseLogger } from 'fastify';
import type { Kysely } from 'kysely';
import type { Config } from './config.js';
import { createDatabase, pingDatabase } from './db/database.js';
import { migrateToLatest } from './db/migrator.js';
import {
  createNotificationListener,
  JOB_CHANGED_CHANNEL,
  JOB_QUEUED_CHANNEL,
  type NotificationListener,
} from './db/notification-listener.js';
import type { Database } from './db/types.js';
import { startEmbeddedPostgres } from './postgres-cluster/embedded-postgres.js';
import { createObjectStore } from './storage/create-object-store.js';
import type { ObjectStore } from './storage/object-store.js';

export interface Runtime {
  db: Kysely<Database>;
  store: ObjectStore;
  /** Started when `notifications` was asked for (the server); the CLI does without. */
  listener?: NotificationListener;
  /** Set when the embedded cluster is used. */
  embeddedDatabaseUrl?: string;
  close(): Promise<void>;
}

/**
 * Opens what the server and the CLI both need: the database (DATABASE_URL, or the embedded
 * cluster under DATA_DIR, started if it is not running yet), migrated, and the object store.
 */
export async function openRuntime(
  config: Readonly<Config>,
  options: {
    log: (message: string) => void;
    applicationName: string;
    notifications?: { logger: FastifyBaseLogger };
  },
): Promise<Runtime> {
  const embedded = config.databaseUrl
    ? undefined
    : await startEmbeddedPostgres({
        dataDir: config.dataDir,
        port: config.embeddedPgPort,
        binDir: config.pgBinDir,
        log: options.log,
      });
  const connectionString = config.databaseUrl ?? (embedded as { connectionString: string }).connectionString;
  const db = createDatabase({
    connectionString,
    poolSize: config.databasePoolSize,
    prepareStatements: config.databasePreparedStatements,
    applicationName: options.applicationName,
  });
  let listener: NotificationListener | undefined;
  try {
    try {
      await pingDatabase(db);
    } catch (error) {
      const where = config.databaseUrl ? 'the database of DATABASE_URL' : 'the embedded PostgreSQL';
      throw new Error(`cannot reach ${where}: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }
    await migrateToLatest(db);
    if (options.notifications) {
      listener = createNotificationListener({
        connectionString,
        channels: [JOB_CHANGED_CHANNEL, JOB_QUEUED_CHANNEL],
        logger: options.notifications.logger,
        applicationName: `${options.applicationName}-listener`,
      });
      await listener.start();
    }
    const store = createObjectStore({
      storageUrl: config.storageUrl,
      gcsApiEndpoint: config.gcsApiEndpoint,
      gcsProjectId: config.gcsProjectId,
    });
    return {
      db,
      store,
      listener,
      embeddedDatabaseUrl: embedded?.connectionString,
      async close() {
        await listener?.close();
        await store.close?.();
        await db.destroy();
        await embedded?.stop();
      },
    };
  } catch (error) {
    await listener?.close();
    await db.destroy();
    await embedded?.stop();
    throw error;
  }
}
