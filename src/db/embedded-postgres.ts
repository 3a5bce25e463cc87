import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { findPostgresBinDir, postgresMajorVersion } from './postgres-binaries.js';
import {
  CLUSTER_SUPERUSER,
  ClusterStartError,
  initCluster,
  isPortFree,
  processState,
  readPostmasterPid,
  startCluster,
  stopCluster,
} from './postgres-cluster.js';

export const EMBEDDED_DATABASE = 'jobs';

export interface EmbeddedPostgresOptions {
  /** The cluster lives in `<dataDir>/postgres`. */
  dataDir: string;
  /** On 127.0.0.1 only. */
  port: number;
  /** Folder holding initdb and pg_ctl (PG_BINDIR); found on the machine when unset. */
  binDir?: string;
  log?: (message: string) => void;
}

export interface EmbeddedPostgres {
  connectionString: string;
  /** Stops the cluster if this process started it; leaves a reused one running. */
  stop(): Promise<void>;
}

/** How long a server found running may take to accept connections. */
const REUSE_WAIT_MS = 15_000;
/** How long a killed postmaster may wait to be reaped before its lock file is removed. */
const ZOMBIE_WAIT_MS = 3000;

function serverUrl(port: number, database: string): string {
  return `postgres://${CLUSTER_SUPERUSER}@127.0.0.1:${port}/${database}`;
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

async function withClient<T>(
  port: number,
  database: string,
  use: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({
    connectionString: serverUrl(port, database),
    connectionTimeoutMillis: 5000,
  });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/**
 * initdb into a sibling folder, then rename: a run killed halfway leaves a folder that is not
 * mistaken for a cluster, and two processes starting at once do not both initdb the same folder.
 */
async function createClusterOnce(
  binDir: string,
  clusterDir: string,
  log: (m: string) => void,
): Promise<void> {
  if (await exists(path.join(clusterDir, 'PG_VERSION'))) return;
  const leftover = await fs.readdir(clusterDir).catch(() => undefined);
  if (leftover && leftover.length > 0) {
    throw new Error(
      `${clusterDir} exists but holds no PostgreSQL cluster (no PG_VERSION file). Move it away or remove it ` +
        'to have a new cluster created there, or set DATA_DIR to another folder.',
    );
  }
  const parent = path.dirname(clusterDir);
  const base = path.basename(clusterDir);
  // Folders of earlier initdb runs that were killed.
  for (const name of await fs.readdir(parent)) {
    const owner = new RegExp(`^${base}\\.initdb-(\\d+)$`).exec(name);
    if (owner && ['gone', 'zombie'].includes(await processState(Number(owner[1])))) {
      await fs.rm(path.join(parent, name), { recursive: true, force: true });
    }
  }
  const staging = path.join(parent, `${base}.initdb-${process.pid}`);
  log(`creating a PostgreSQL cluster in ${clusterDir}`);
  try {
    await initCluster({
      binDir,
      clusterDir: staging,
      settings: { listen_addresses: '127.0.0.1', unix_socket_directories: '' },
    });
    if (leftover) await fs.rmdir(clusterDir);
    await fs.rename(staging, clusterDir);
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true });
    // Another process finished its initdb first: use its cluster.
    if (await exists(path.join(clusterDir, 'PG_VERSION'))) return;
    throw error;
  }
}

async function checkVersion(binDir: string, clusterDir: string): Promise<void> {
  const dataVersion = (await fs.readFile(path.join(clusterDir, 'PG_VERSION'), 'utf8')).trim();
  const binVersion = await postgresMajorVersion(binDir);
  if (Number(dataVersion) !== binVersion) {
    throw new Error(
      `The cluster in ${clusterDir} was created by PostgreSQL ${dataVersion}, but the programs in ${binDir} ` +
        `are PostgreSQL ${binVersion}. Set PG_BINDIR to the PostgreSQL ${dataVersion} programs (e.g. ` +
        `/usr/lib/postgresql/${dataVersion}/bin), upgrade the cluster with pg_upgrade, or move the folder away ` +
        'to start with an empty one.',
    );
  }
}

/**
 * The port of a server already running on `clusterDir` (left by an earlier process), once it
 * accepts connections; undefined if none runs. A lock file left by a killed server is dealt with
 * here where PostgreSQL itself would refuse to start.
 */
async function findRunningServer(clusterDir: string, log: (m: string) => void): Promise<number | undefined> {
  const started = Date.now();
  let lastError: unknown;
  while (Date.now() - started < REUSE_WAIT_MS) {
    const lock = await readPostmasterPid(clusterDir);
    if (!lock) return undefined;
    const state = await processState(lock.pid);
    if (state === 'gone') return undefined; // PostgreSQL replaces a lock file whose process is gone.
    if (state === 'other' || (state === 'zombie' && Date.now() - started > ZOMBIE_WAIT_MS)) {
      // A reused pid, or a killed postmaster nobody reaps (a container whose init does not reap):
      // PostgreSQL would take either for a live server and refuse to start.
      log(`removing the stale lock file of a killed PostgreSQL server (pid ${lock.pid}) in ${clusterDir}`);
      await fs.rm(path.join(clusterDir, 'postmaster.pid'), { force: true });
      return undefined;
    }
    if (state === 'postgres' && lock.status === 'ready') {
      try {
        const dataDirectory = await withClient(lock.port, 'postgres', async (client) => {
          const { rows } = await client.query<{ dir: string }>(
            `select current_setting('data_directory') as dir`,
          );
          return rows[0].dir;
        });
        if ((await fs.realpath(dataDirectory)) === (await fs.realpath(clusterDir))) return lock.port;
        lastError = new Error(`port ${lock.port} answers for ${dataDirectory}, not ${clusterDir}`);
      } catch (error) {
        lastError = error;
      }
    }
    await sleep(100);
  }
  const reason = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(
    `A PostgreSQL server is running on ${clusterDir} (postmaster.pid) but does not accept connections${reason}. ` +
      `Stop it (pg_ctl stop -D ${clusterDir}) or wait until it is up, then start again.`,
  );
}

async function ensureDatabase(port: number, name: string): Promise<void> {
  await withClient(port, 'postgres', async (client) => {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (rowCount) return;
    try {
      await client.query(`create database "${name}"`);
    } catch (error) {
      // duplicate_database: another process created it in the meantime.
      if ((error as { code?: string }).code !== '42P04') throw error;
    }
  });
}

function portInUseError(port: number, clusterDir: string): Error {
  return new Error(
    `Port ${port} on 127.0.0.1 is in use by a program that is not the embedded PostgreSQL cluster of ` +
      `${clusterDir}. Set EMBEDDED_PG_PORT to a free port, stop that program, or set DATABASE_URL to use ` +
      'an existing PostgreSQL server.',
  );
}

/**
 * Starts (or reuses) the server's own PostgreSQL cluster in `<dataDir>/postgres`, created on first
 * use, with a `jobs` database. For when no DATABASE_URL is configured.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const log = options.log ?? (() => {});
  const binDir = await findPostgresBinDir(options.binDir);
  const dataDir = path.resolve(options.dataDir);
  const clusterDir = path.join(dataDir, 'postgres');
  const logFile = path.join(clusterDir, 'server.log');
  await fs.mkdir(dataDir, { recursive: true });
  await createClusterOnce(binDir, clusterDir, log);
  await checkVersion(binDir, clusterDir);

  let port = await findRunningServer(clusterDir, log);
  let startedHere = false;
  if (port !== undefined) {
    log(`reusing the PostgreSQL server already running on ${clusterDir} (port ${port})`);
    if (port !== options.port) log(`it listens on port ${port}, not on EMBEDDED_PG_PORT ${options.port}`);
  } else {
    if (!(await isPortFree(options.port))) throw portInUseError(options.port, clusterDir);
    try {
      await startCluster({ binDir, clusterDir, port: options.port, logFile });
      startedHere = true;
      port = options.port;
      log(`started PostgreSQL on 127.0.0.1:${port} (data in ${clusterDir}, log in ${logFile})`);
    } catch (error) {
      if (error instanceof ClusterStartError && error.portInUse)
        throw portInUseError(options.port, clusterDir);
      // Another process may have started it in the meantime.
      port = await findRunningServer(clusterDir, log);
      if (port === undefined) throw error;
      log(`reusing the PostgreSQL server another process just started on ${clusterDir} (port ${port})`);
    }
  }

  // The server this process started, by pid: after a crash and restart by another process,
  // stop() must not stop that other process's server.
  const startedPid = startedHere ? (await readPostmasterPid(clusterDir))?.pid : undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (startedPid === undefined || (await readPostmasterPid(clusterDir))?.pid !== startedPid) return;
      await stopCluster({ binDir, clusterDir, mode: 'fast' });
      log('stopped PostgreSQL');
    })();
    return stopping;
  };
  try {
    await ensureDatabase(port, EMBEDDED_DATABASE);
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
  return { connectionString: serverUrl(port, EMBEDDED_DATABASE), stop };
}
