import fp from 'fastify-plugin';
import type { Kysely } from 'kysely';
import type { Config } from '../config.js';
import { createDatabase } from '../db/database.js';
import type { Database } from '../db/types.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The pool every repository runs on. */
    db: Kysely<Database>;
  }
}

/**
 * `app.db`: a pool on DATABASE_URL, destroyed when the app closes. A pool handed in (tests that
 * count queries) is used as is and left to its owner.
 */
export const databasePlugin = fp<{ config: Config; db?: Kysely<Database> }>(
  async (app, { config, db }) => {
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
    });
    app.decorate('db', own);
    app.addHook('onClose', () => own.destroy());
  },
  { name: 'database' },
);
