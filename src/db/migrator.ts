import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileMigrationProvider, type Kysely, type MigrationResult, Migrator } from 'kysely';

// src/db -> migrations, and dist/src/db -> dist/migrations once compiled.
const migrationFolder = fileURLToPath(new URL('../../migrations', import.meta.url));

// Migrations are written against Kysely<unknown>; any typed instance may run them.
// biome-ignore lint/suspicious/noExplicitAny: the migrator does not depend on the schema type.
type AnyKysely = Kysely<any>;

export function createMigrator(db: AnyKysely): Migrator {
  return new Migrator({
    db,
    provider: new FileMigrationProvider({ fs, path, migrationFolder }),
  });
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: AnyKysely): Promise<MigrationResult[]> {
  const { error, results } = await createMigrator(db).migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    const where = failed ? ` (migration ${failed.migrationName})` : '';
    throw new Error(
      `database migration failed${where}: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
  return results ?? [];
}
