import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './types.js';

export interface DatabaseOptions {
  connectionString: string;
  poolSize?: number;
  /** Name shown in pg_stat_activity. */
  applicationName?: string;
  /**
   * Named prepared statements (default true). Off for poolers that cannot keep them, such as
   * PgBouncer in transaction mode.
   */
  prepareStatements?: boolean;
}

// Distinct statements that get a name; past this, statements run unnamed (queries built with a
// variable number of parameters must not grow every connection's statement cache for ever).
const MAX_NAMED_STATEMENTS = 500;
const statementNames = new Map<string, string>();

/**
 * Runs every parameterised query as a named prepared statement, one name per distinct SQL text:
 * each connection parses and plans it once, then only binds and executes. On the status route
 * this is worth more than anything else the server does per request (see BENCHMARKS.md).
 */
class PreparingClient extends pg.Client {
  // biome-ignore lint/suspicious/noExplicitAny: pg's query() has many overloads; this forwards them all.
  override query(config: any, values?: any, callback?: any): any {
    if (typeof config === 'string' && Array.isArray(values) && values.length > 0) {
      let name = statementNames.get(config);
      if (!name && statementNames.size < MAX_NAMED_STATEMENTS) {
        name = `s${statementNames.size}`;
        statementNames.set(config, name);
      }
      if (name) return super.query({ name, text: config, values }, callback);
    }
    return super.query(config, values, callback);
  }
}

export function createDatabase(options: DatabaseOptions): Kysely<Database> {
  const pool = new pg.Pool({
    Client: options.prepareStatements === false ? pg.Client : PreparingClient,
    connectionString: options.connectionString,
    max: options.poolSize ?? 10,
    application_name: options.applicationName ?? 'jobs-server',
  });
  // An idle client that loses its connection (database restart) emits 'error' on the pool;
  // without a listener that would crash the process. The next checkout reconnects.
  pool.on('error', () => {});
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** One round trip to the database; throws when it does not answer. */
export async function pingDatabase(db: Kysely<Database>): Promise<void> {
  await sql`select 1`.execute(db);
}
