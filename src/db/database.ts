import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { DatabaseReadTimeoutError } from './database-errors.js';
import type { DatabaseHealth } from './database-health.js';
import { createPoolClientClass, withReadTimeout } from './pool-client.js';
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
  /** Longest wait for a new connection, or for a free one of the pool (default: no limit). */
  connectTimeoutMs?: number;
  /**
   * statement_timeout of every connection; a connection that has not answered READ_TIMEOUT_MARGIN_MS
   * later is closed (default: no limit). Off for migrations, which may run long.
   */
  statementTimeoutMs?: number;
  /** Told of every new connection and every connection failure. */
  health?: DatabaseHealth;
}

/**
 * How much longer than statement_timeout the client waits for an answer. statement_timeout ends
 * a slow statement on a server that runs; a server that is paused, or a network that dropped the
 * connection silently, answers nothing, and only the client's own limit ends the wait.
 */
export const READ_TIMEOUT_MARGIN_MS = 1000;

export function createDatabase(options: DatabaseOptions): Kysely<Database> {
  const { health, statementTimeoutMs } = options;
  const pool = new pg.Pool({
    Client: createPoolClientClass({
      prepareStatements: options.prepareStatements !== false,
      readTimeoutMs:
        statementTimeoutMs === undefined ? undefined : statementTimeoutMs + READ_TIMEOUT_MARGIN_MS,
      onConnectionError: (error, startedAt) => health?.failed(error, startedAt),
    }),
    connectionString: options.connectionString,
    max: options.poolSize ?? 10,
    application_name: options.applicationName ?? 'jobs-server',
    connectionTimeoutMillis: options.connectTimeoutMs,
    // A SET rather than pg's statement_timeout option, a startup parameter that PgBouncer refuses
    // unless told to ignore it. pg-pool runs this before it hands the new client out, and drops
    // the client when it fails (Kysely's onCreateConnection would leak it).
    onConnect:
      statementTimeoutMs === undefined
        ? undefined
        : async (client) => {
            await client.query(`set statement_timeout = ${Math.trunc(statementTimeoutMs)}`);
          },
  });
  // An idle client that loses its connection (database restart) emits 'error' on the pool, which
  // has already dropped it; without a listener that would end the process. The next checkout
  // connects anew.
  pool.on('error', (error) => health?.failed(error));
  pool.on('connect', () => health?.connected());
  // What Kysely sees of the pool: checkouts that fail (refused, timed out) are reported too.
  const checkouts = {
    async connect() {
      const startedAt = performance.now();
      try {
        return await pool.connect();
      } catch (error) {
        health?.failed(error, startedAt);
        throw error;
      }
    },
    end: () => pool.end(),
  };
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: checkouts }) });
}

/**
 * One round trip to the database; throws when it does not answer, within `timeoutMs` when given
 * (the wait for a free connection included; a connection that does not answer in time is closed).
 */
export async function pingDatabase(
  db: Kysely<Database>,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const { timeoutMs } = options;
  if (timeoutMs === undefined) {
    await sql`select 1`.execute(db);
    return;
  }
  const ping = withReadTimeout(timeoutMs, () => sql`select 1`.execute(db));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DatabaseReadTimeoutError(`the database did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  // The ping may still fail after the deadline answered (a checkout that times out later).
  ping.catch(() => {});
  try {
    await Promise.race([ping, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
