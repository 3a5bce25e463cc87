import path from 'node:path';
import { findPostgresBinDir } from './binaries.js';
import { clusterUrl } from './connection.js';
import {
  ClusterStartError,
  initCluster,
  readPostmasterPid,
  type SettingValue,
  startCluster,
  stopCluster,
} from './control.js';
import { findFreePort } from './ports.js';
import { createThrowawayFolder } from './throwaway-folder.js';

/** Attempts at a free port: another program may take it between the ask and postgres binding it. */
const PORT_ATTEMPTS = 3;

export interface ThrowawayCluster {
  clusterDir: string;
  port: number;
  /** The `postgres` database, as the superuser. */
  serverUrl: string;
  postmasterPid: number | undefined;
  /** Immediate shutdown: no checkpoint. */
  stop(): Promise<void>;
}

export interface BootThrowawayClusterOptions {
  binDir: string;
  /** Inside a throwaway folder (createThrowawayFolder); must not exist yet, or be empty. */
  clusterDir: string;
  /** postgresql.conf settings on top of listening on 127.0.0.1 only, without a Unix socket. */
  settings: Record<string, SettingValue>;
  /** How long stop() waits for the server to go; 60 seconds unless given. */
  stopTimeoutSeconds?: number;
}

/**
 * initdb --no-sync with the settings, then start on a free port of 127.0.0.1 (its log in
 * `<clusterDir>/server.log`), trying another port when the one picked was taken meanwhile.
 */
export async function bootThrowawayCluster(options: BootThrowawayClusterOptions): Promise<ThrowawayCluster> {
  const { binDir, clusterDir } = options;
  await initCluster({
    binDir,
    clusterDir,
    noSync: true,
    settings: { listen_addresses: '127.0.0.1', unix_socket_directories: '', ...options.settings },
  });
  const stop = () =>
    stopCluster({ binDir, clusterDir, mode: 'immediate', timeoutSeconds: options.stopTimeoutSeconds });
  for (let attempt = 1; ; attempt++) {
    const port = await findFreePort();
    try {
      await startCluster({ binDir, clusterDir, port, logFile: path.join(clusterDir, 'server.log') });
    } catch (error) {
      if (!(error instanceof ClusterStartError && error.portInUse) || attempt === PORT_ATTEMPTS) throw error;
      continue;
    }
    try {
      const postmasterPid = (await readPostmasterPid(clusterDir))?.pid;
      return { clusterDir, port, serverUrl: clusterUrl(port, 'postgres'), postmasterPid, stop };
    } catch (error) {
      await stop().catch(() => {});
      throw error;
    }
  }
}

export interface ThrowawayClusterOptions {
  /** Folder in os.tmpdir() shared by the runs of one kind, e.g. `jobs-server-test-pg-<uid>`. */
  parentName: string;
  /** Folder holding initdb and pg_ctl (PG_BINDIR); found on the machine when unset. */
  binDir?: string;
  settings: Record<string, SettingValue>;
}

/**
 * A cluster of this process in a folder of its own under `<tmpdir>/<parentName>`, after the
 * clusters of processes that died before their teardown were stopped and removed. stop() stops
 * it and removes the folder, and never throws.
 */
export async function startThrowawayCluster(options: ThrowawayClusterOptions): Promise<ThrowawayCluster> {
  const binDir = await findPostgresBinDir(options.binDir);
  const folder = await createThrowawayFolder({ parentName: options.parentName, binDir });
  try {
    const cluster = await bootThrowawayCluster({
      binDir,
      clusterDir: folder.clusterDir,
      settings: options.settings,
    });
    return {
      ...cluster,
      async stop() {
        await cluster.stop().catch(() => {});
        await folder.remove();
      },
    };
  } catch (error) {
    await folder.remove();
    throw error;
  }
}
