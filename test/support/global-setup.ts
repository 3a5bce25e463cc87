import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { register as registerTsx } from 'tsx/esm/api';
import type { TestProject } from 'vitest/node';
import { createDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrator.js';
import { findPostgresBinDir, preparePostgresDirectory } from '../../src/db/postgres-binaries.js';
import {
  CLUSTER_SUPERUSER,
  ClusterStartError,
  findFreePort,
  initCluster,
  isProcessAlive,
  startCluster,
  stopCluster,
  withDatabase,
} from '../../src/db/postgres-cluster.js';

const TEMPLATE_DATABASE = 'jobs_template';

/** Throwaway clusters live here, one folder each, with the pid of the run that owns it. */
const CLUSTERS_PARENT = path.join(os.tmpdir(), `jobs-server-test-pg-${process.getuid?.() ?? 'user'}`);
const OWNER_FILE = 'owner.pid';

/** Stops and removes the clusters of runs that were killed before their teardown. */
async function removeStaleClusters(binDir: string): Promise<void> {
  const names = await fs.readdir(CLUSTERS_PARENT).catch(() => [] as string[]);
  await Promise.all(
    names.map(async (name) => {
      const root = path.join(CLUSTERS_PARENT, name);
      const owner = Number(await fs.readFile(path.join(root, OWNER_FILE), 'utf8').catch(() => ''));
      if (owner > 0 ? isProcessAlive(owner) : Date.now() - (await fs.stat(root)).mtimeMs < 60_000) return;
      const clusterDir = path.join(root, 'data');
      await stopCluster({ binDir, clusterDir, mode: 'immediate', timeoutSeconds: 10 }).catch(() => {});
      await fs.rm(root, { recursive: true, force: true });
    }),
  );
}

interface Cluster {
  serverUrl: string;
  stop(): Promise<void>;
}

/** initdb, settings for speed over durability, start on a free port: about a second. */
async function startThrowawayCluster(): Promise<Cluster> {
  const binDir = await findPostgresBinDir(process.env.PG_BINDIR);
  await fs.mkdir(CLUSTERS_PARENT, { recursive: true });
  // Whatever the umask: as root, the postgres user must get through it to its cluster.
  await fs.chmod(CLUSTERS_PARENT, 0o755);
  await removeStaleClusters(binDir);

  const root = path.join(CLUSTERS_PARENT, `${process.pid}-${randomBytes(4).toString('hex')}`);
  const clusterDir = path.join(root, 'data');
  let started = false;
  const stop = async () => {
    if (started) await stopCluster({ binDir, clusterDir, mode: 'immediate' }).catch(() => {});
    await fs.rm(root, { recursive: true, force: true });
  };
  try {
    await preparePostgresDirectory(root);
    await fs.writeFile(path.join(root, OWNER_FILE), String(process.pid));
    await initCluster({
      binDir,
      clusterDir,
      noSync: true,
      settings: {
        listen_addresses: '127.0.0.1',
        unix_socket_directories: '',
        fsync: false,
        synchronous_commit: false,
        full_page_writes: false,
        // Every test file opens its own pool, and files run in parallel.
        max_connections: 300,
      },
    });
    for (let attempt = 1; ; attempt++) {
      // Free when asked, but another program may take it before postgres binds it.
      const port = await findFreePort();
      try {
        await startCluster({ binDir, clusterDir, port, logFile: path.join(root, 'server.log') });
        started = true;
        return { serverUrl: `postgres://${CLUSTER_SUPERUSER}@127.0.0.1:${port}/postgres`, stop };
      } catch (error) {
        if (!(error instanceof ClusterStartError && error.portInUse) || attempt === 3) throw error;
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
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
  const cluster: Cluster | undefined = process.env.TEST_DATABASE_URL
    ? undefined
    : await startThrowawayCluster();
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
