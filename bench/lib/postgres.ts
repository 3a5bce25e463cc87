import { existsSync, promises as fs, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { findPostgresBinDir, postgresMajorVersion } from '../../src/postgres-cluster/binaries.js';
import { withDatabase } from '../../src/postgres-cluster/connection.js';
import { bootThrowawayCluster } from '../../src/postgres-cluster/throwaway-cluster.js';
import { createThrowawayFolder } from '../../src/postgres-cluster/throwaway-folder.js';
import { onCleanup } from './children.js';

/** Runs of the harness live here, one folder each, with the pid of the run that owns it. */
const RUNS_PARENT_NAME = `jobs-bench-${process.getuid?.() ?? 'user'}`;
/** The throwaway cluster, inside the run folder. */
const CLUSTER_DIR_NAME = 'pg';
/** Pids of the processes a run started, so that a later run can end them if that run was killed. */
export const PIDS_FILE = 'children.pids';

export interface BenchDatabase {
  /** The database everything under test uses. */
  url: string;
  /** The `postgres` database of the same server: statistics are read from there, so they do not count. */
  adminUrl: string;
  /** Set for the throwaway cluster: its CPU time can be read from /proc. */
  postmasterPid: number | undefined;
  /** pg_stat_statements is loaded (always in the throwaway cluster). */
  statements: boolean;
  /** e.g. "PostgreSQL 15.18 (throwaway cluster, fsync on)". */
  description: string;
  settings: Record<string, string>;
  pgbench: string | undefined;
}

/** Ends the processes a run that was killed recorded, before its cluster is stopped and its folder removed. */
async function killRecordedProcesses(root: string): Promise<void> {
  const pids = (await fs.readFile(path.join(root, PIDS_FILE), 'utf8').catch(() => ''))
    .split('\n')
    .map(Number)
    .filter((pid) => pid > 0);
  for (const pid of pids) {
    // Only a process that still runs something of this run (its folder is on its command line).
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(root) || cmdline.includes('bench/')) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // Gone.
      }
    }
  }
}

/** The folder of this run: cluster, object stores, logs. Removed at the end. */
export async function createRunDirectory(): Promise<string> {
  const folder = await createThrowawayFolder({
    parentName: RUNS_PARENT_NAME,
    clusterDirName: CLUSTER_DIR_NAME,
    binDir: await findPostgresBinDir(process.env.PG_BINDIR).catch(() => undefined),
    cleanStale: killRecordedProcesses,
  });
  onCleanup(folder.remove, () => rmSync(folder.path, { recursive: true, force: true }));
  return folder.path;
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

async function findPgbench(binDir: string | undefined): Promise<string | undefined> {
  const candidates = [binDir && path.join(binDir, 'pgbench'), '/usr/bin/pgbench'];
  return candidates.find((c): c is string => !!c && existsSync(c));
}

const SHOWN_SETTINGS = [
  'server_version',
  'shared_buffers',
  'max_connections',
  'fsync',
  'synchronous_commit',
  'wal_level',
  'jit',
];

async function readSettings(url: string): Promise<Record<string, string>> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ name: string; setting: string }>(
      `select name, current_setting(name) as setting from pg_settings where name = any($1)`,
      [SHOWN_SETTINGS],
    );
    return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
  });
}

/**
 * A throwaway cluster of this run (production durability: fsync and synchronous_commit on; a
 * buffer cache that holds the loaded table; pg_stat_statements loaded), or the DATABASE_URL
 * server, on which a database of this run is created and dropped at the end.
 */
export async function openBenchDatabase(runDir: string, log: (m: string) => void): Promise<BenchDatabase> {
  const external = process.env.DATABASE_URL;
  if (external) {
    const name = `jobs_bench_${process.pid}`;
    await withClient(external, (c) => c.query(`create database ${name}`));
    onCleanup(async () => {
      await withClient(external, (c) => c.query(`drop database if exists ${name} with (force)`));
    });
    const url = withDatabase(external, name);
    const statements = await withClient(url, async (c) => {
      try {
        await c.query('create extension if not exists pg_stat_statements');
        await c.query('select 1 from pg_stat_statements limit 1');
        return true;
      } catch {
        return false;
      }
    });
    const settings = await readSettings(url);
    return {
      url,
      adminUrl: url,
      postmasterPid: undefined,
      statements,
      description: `PostgreSQL ${settings.server_version} (DATABASE_URL, database ${name})`,
      settings,
      pgbench: await findPgbench(undefined),
    };
  }

  const binDir = await findPostgresBinDir(process.env.PG_BINDIR);
  const statements = existsSync(path.join(binDir, '..', 'lib', 'pg_stat_statements.so'));
  const t0 = performance.now();
  const cluster = await bootThrowawayCluster({
    binDir,
    clusterDir: path.join(runDir, CLUSTER_DIR_NAME),
    // Production durability: fsync and synchronous_commit keep their defaults (on).
    settings: {
      max_connections: 400,
      // The loaded table and its indexes stay in memory, as they would on a sized server.
      shared_buffers: '1GB',
      max_wal_size: '8GB',
      checkpoint_timeout: '30min',
      ...(statements
        ? { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.max': 2000 }
        : {}),
    },
    stopTimeoutSeconds: 20,
  });
  onCleanup(cluster.stop, () => {
    // Synchronous last resort (exit hook): SIGQUIT is PostgreSQL's immediate shutdown.
    const pidFile = path.join(cluster.clusterDir, 'postmaster.pid');
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (pid > 0) process.kill(pid, 'SIGQUIT');
  });
  const { serverUrl, port, postmasterPid } = cluster;
  await withClient(serverUrl, async (c) => {
    await c.query('create database jobs_bench');
    if (statements) await c.query('create extension pg_stat_statements');
  });
  log(`PostgreSQL cluster started in ${((performance.now() - t0) / 1000).toFixed(1)} s on port ${port}`);
  const url = withDatabase(serverUrl, 'jobs_bench');
  const settings = await readSettings(url);
  const version = await postgresMajorVersion(binDir);
  return {
    url,
    adminUrl: serverUrl,
    postmasterPid,
    statements,
    description: `PostgreSQL ${settings.server_version} (throwaway cluster of this run, PostgreSQL ${version} programs in ${binDir})`,
    settings,
    pgbench: await findPgbench(binDir),
  };
}

export interface StatsSnapshot {
  at: number;
  xactCommit: number;
  tupReturned: number;
  tupFetched: number;
  /** queryid -> calls, with the query text. */
  statements: Map<string, { calls: number; query: string }>;
}

/** Counters of the bench database, read over a connection to another database so the read does not count. */
export async function readStats(db: BenchDatabase, admin: pg.Client): Promise<StatsSnapshot> {
  const name = new URL(db.url).pathname.slice(1);
  const { rows } = await admin.query<{ xact_commit: string; tup_returned: string; tup_fetched: string }>(
    'select xact_commit, tup_returned, tup_fetched from pg_stat_database where datname = $1',
    [name],
  );
  const statements = new Map<string, { calls: number; query: string }>();
  if (db.statements) {
    const result = await admin.query<{ queryid: string; calls: string; query: string }>(
      `select queryid::text, calls, query from pg_stat_statements
       where dbid = (select oid from pg_database where datname = $1)`,
      [name],
    );
    for (const r of result.rows) statements.set(r.queryid, { calls: Number(r.calls), query: r.query });
  }
  return {
    at: performance.now(),
    xactCommit: Number(rows[0]?.xact_commit ?? 0),
    tupReturned: Number(rows[0]?.tup_returned ?? 0),
    tupFetched: Number(rows[0]?.tup_fetched ?? 0),
    statements,
  };
}

export interface StatsDelta {
  seconds: number;
  xactCommit: number;
  tupReturned: number;
  statementCalls: number;
  /** Statements that ran in the window, most calls first. */
  byStatement: { calls: number; query: string }[];
}

export function statsDelta(before: StatsSnapshot, after: StatsSnapshot): StatsDelta {
  const byStatement: { calls: number; query: string }[] = [];
  for (const [id, s] of after.statements) {
    const calls = s.calls - (before.statements.get(id)?.calls ?? 0);
    // With DATABASE_URL the statistics are read from the same database: leave those reads out.
    if (calls > 0 && !/pg_stat_(statements|database)/.test(s.query))
      byStatement.push({ calls, query: s.query });
  }
  byStatement.sort((a, b) => b.calls - a.calls);
  return {
    seconds: (after.at - before.at) / 1000,
    xactCommit: after.xactCommit - before.xactCommit,
    tupReturned: after.tupReturned - before.tupReturned,
    statementCalls: byStatement.reduce((sum, s) => sum + s.calls, 0),
    byStatement,
  };
}
