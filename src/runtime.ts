import type { Kysely } from 'kysely';
import type { Config } from './config.js';
import { createDatabase } from './db/database.js';
import { startEmbeddedPostgres } from './db/embedded-postgres.js';
import { migrateToLatest } from './db/migrator.js';
import type { Database } from './db/types.js';
import { createObjectStore } from './storage/create-object-store.js';
import type { ObjectStore } from './storage/object-store.js';

export interface Runtime {
  db: Kysely<Database>;
  store: ObjectStore;
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
  options: { log: (message: string) => void; applicationName: string },
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
    applicationName: options.applicationName,
  });
  try {
    await migrateToLatest(db);
    const store = createObjectStore({
      storageUrl: config.storageUrl,
      gcsApiEndpoint: config.gcsApiEndpoint,
      gcsProjectId: config.gcsProjectId,
    });
    return {
      db,
      store,
      embeddedDatabaseUrl: embedded?.connectionString,
      async close() {
        await store.close?.();
        await db.destroy();
        await embedded?.stop();
      },
    };
  } catch (error) {
    await db.destroy();
    await embedded?.stop();
    throw error;
  }
}
