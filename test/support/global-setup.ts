import pg from 'pg';
import { register as registerTsx } from 'tsx/esm/api';
import type { TestProject } from 'vitest/node';
import { createDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrator.js';
import { withDatabase } from '../../src/postgres-cluster/connection.js';
import {
  startThrowawayCluster,
  type ThrowawayCluster,
} from '../../src/postgres-cluster/throwaway-cluster.js';

const TEMPLATE_DATABASE = 'jobs_template';

/** initdb, settings for speed over durability, start on a free port: about a second. */
function startTestCluster(): Promise<ThrowawayCluster> {
  return startThrowawayCluster({
    // One folder per run, with the pid of the run that owns it: a later run removes those of killed runs.
    parentName: `jobs-server-test-pg-${process.getuid?.() ?? 'user'}`,
    binDir: process.env.PG_BINDIR,
    settings: {
      fsync: false,
      synchronous_commit: false,
      full_page_writes: false,
      // Every test file opens its own pool, and files run in parallel.
      max_connections: 300,
    },
  });
}

/** (Re)creates the template database from the migrations; nothing may stay connected to it. */
async function createTemplate(serverUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [
      TEMPLATE_DATABASE,
    ]);
    if (rowCount) {
      // Left by an earlier run against TEST_DATABASE_URL; its migrations may be out of date.
      await admin.query(`alter database ${TEMPLATE_DATABASE} is_template false`);
      await admin.query(`drop database ${TEMPLATE_DATABASE} with (force)`);
    }
    await admin.query(`create database ${TEMPLATE_DATABASE}`);
    const db = createDatabase({
      connectionString: withDatabase(serverUrl, TEMPLATE_DATABASE),
      poolSize: 1,
      applicationName: 'jobs-server-test-setup',
    });
    // Kysely imports the migration files with Node's own import(), outside Vite, and Node 20
    // cannot load .ts files: tsx's loader (what `npm start` runs under) can, for this moment.
    const unregisterTsx = registerTsx();
    try {
      await migrateToLatest(db);
    } finally {
      await unregisterTsx();
      await db.destroy();
    }
    // No connections allowed: CREATE DATABASE ... TEMPLATE fails while anyone is connected to it.
    await admin.query(`alter database ${TEMPLATE_DATABASE} with is_template true allow_connections false`);
  } finally {
    await admin.end();
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = process.env.TEST_DATABASE_URL ? undefined : await startTestCluster();
  const serverUrl = cluster?.serverUrl ?? (process.env.TEST_DATABASE_URL as string);
  try {
    await createTemplate(serverUrl);
  } catch (error) {
    await cluster?.stop();
    throw error;
  }
  project.provide('databaseUrl', serverUrl);
  project.provide('templateDatabase', TEMPLATE_DATABASE);
  return async () => {
    await cluster?.stop();
  };
}
