import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { inject } from 'vitest';
import { createDatabase } from '../../src/db/database.js';
import type { Database } from '../../src/db/types.js';
import { withDatabase } from '../../src/postgres-cluster/connection.js';

export interface TestDatabase {
  db: Kysely<Database>;
  connectionString: string;
  /** Closes the pool and drops the database. */
  destroy(): Promise<void>;
}

async function asAdmin<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject('databaseUrl') });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** object_in_use: "source database is being accessed by other users". */
const OBJECT_IN_USE = '55006';

/**
 * A fresh database cloned from the migrated template, for one test file: call it in beforeAll
 * and `destroy()` in afterAll.
 */
export async function createTestDatabase(options: { poolSize?: number } = {}): Promise<TestDatabase> {
  const name = `test_${randomBytes(8).toString('hex')}`;
  const template = inject('templateDatabase');
  await asAdmin(async (admin) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.query(`create database ${name} template ${template}`);
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== OBJECT_IN_USE || attempt === 10) throw error;
        await sleep(50 * attempt);
      }
    }
  });
  const connectionString = withDatabase(inject('databaseUrl'), name);
  const db = createDatabase({ connectionString, poolSize: options.poolSize ?? 5, applicationName: name });
  let destroying: Promise<void> | undefined;
  return {
    db,
    connectionString,
    destroy() {
      destroying ??= (async () => {
        await db.destroy();
        await asAdmin((admin) => admin.query(`drop database if exists ${name} with (force)`));
      })();
      return destroying;
    },
  };
}
