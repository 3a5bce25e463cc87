import fp from 'fastify-plugin';
import type { Kysely } from 'kysely';
import type { Config } from '../config.js';
import { createDatabase } from '../db/database.js';
import { createDatabaseHealth } from '../db/database-health.js';
import type { Database } from '../db/types.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The pool every repository runs on. */
    db: Kysely<Database>;
  }
}

/**
 * `app.db`: a pool on DATABASE_URL with the connect and statement timeouts of the config,
 * destroyed when the app closes; `app.databaseHealth`: whether the database is reachable, fed
 * by that pool, logging each outage once. A pool handed in (tests that count queries) is used as
 * is and left to its owner; only the request errors feed the tracker then.
 */
export const databasePlugin = fp<{ config: Config; db?: Kysely<Database> }>(
  async (app, { config, db }) => {
    const health = createDatabaseHealth(app.log);
    app.decorate('databaseHealth', health);
    if (db) {
      app.decorate('db', db);
      return;
    }
    if (!config.databaseUrl) throw new Error('DATABASE_URL is not set and no database was given');
    const own = createDatabase({
      connectionString: config.databaseUrl,
      poolSize: config.databasePoolSize,
      prepareStatements: config.databasePreparedStatements,
      applicationName: 'jobs-server',
      connectTimeoutMs: config.databaseConnectTimeoutMs,
      statementTimeoutMs: config.databaseStatementTimeoutMs,
      health,
    });
    app.decorate('db', own);
    app.addHook('onClose', () => own.destroy());
  },
  { name: 'database' },
);
