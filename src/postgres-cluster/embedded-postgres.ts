import { promises as fs } from 'node:fs';
import path from 'node:path';
import { findPostgresBinDir, postgresMajorVersion } from './binaries.js';
import { clusterUrl, withClient } from './connection.js';
import { ClusterStartError, initCluster, readPostmasterPid, startCluster, stopCluster } from './control.js';
import { isPortFree } from './ports.js';
import { processState } from './processes.js';
import { findRunningServer } from './running-server.js';

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

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
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

async function ensureDatabase(port: number, name: string): Promise<void> {
  await withClient(clusterUrl(port, 'postgres'), async (client) => {
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
  return { connectionString: clusterUrl(port, EMBEDDED_DATABASE), stop };
}
