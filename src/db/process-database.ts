import type { Config } from '../config.js';
import { startEmbeddedPostgres } from '../postgres-cluster/embedded-postgres.js';
import { createDatabase, pingDatabase } from './database.js';
import { migrateToLatest } from './migrator.js';

export interface ProcessDatabase {
  /** Where to connect: DATABASE_URL, or the embedded cluster's URL. */
  url: string;
  /** The process started the embedded cluster (and stops it in stop()). */
  embedded: boolean;
  stop(): Promise<void>;
}

/**
 * The PostgreSQL the server and the CLI work on: DATABASE_URL, or the embedded cluster under
 * DATA_DIR, started if it is not running yet. When this resolves the database answers and is
 * migrated.
 */
export async function openProcessDatabase(
  config: Config,
  options: { log: (message: string) => void; applicationName: string },
): Promise<ProcessDatabase> {
  const embedded = config.databaseUrl
    ? undefined
    : await startEmbeddedPostgres({
        dataDir: config.dataDir,
        port: config.embeddedPgPort,
        binDir: config.pgBindir,
        log: options.log,
      });
  const url = config.databaseUrl ?? (embedded as { connectionString: string }).connectionString;
  // No statement timeout: a migration may run long. A database that does not answer the connect
  // fails the start instead of hanging it.
  const db = createDatabase({
    connectionString: url,
    poolSize: 1,
    applicationName: options.applicationName,
    connectTimeoutMs: config.databaseConnectTimeoutMs,
  });
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
  } catch (error) {
    await db.destroy();
    await embedded?.stop();
    throw error;
  }
  await db.destroy();
  return { url, embedded: embedded !== undefined, stop: async () => embedded?.stop() };
}
