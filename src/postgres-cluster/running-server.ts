import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { clusterUrl, withClient } from './connection.js';
import { readPostmasterPid } from './control.js';
import { processState } from './processes.js';

/** How long a server found running may take to accept connections. */
const REUSE_WAIT_MS = 15_000;
/** How long a killed postmaster may wait to be reaped before its lock file is removed. */
const ZOMBIE_WAIT_MS = 3000;

/**
 * The port of a server already running on `clusterDir` (left by an earlier process), once it
 * accepts connections; undefined if none runs. A lock file left by a killed server is dealt with
 * here where PostgreSQL itself would refuse to start.
 */
export async function findRunningServer(
  clusterDir: string,
  log: (m: string) => void,
): Promise<number | undefined> {
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
        const dataDirectory = await withClient(clusterUrl(lock.port, 'postgres'), async (client) => {
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
