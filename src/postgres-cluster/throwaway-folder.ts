import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stopCluster } from './control.js';
import { isProcessAlive } from './processes.js';

/** Holds the pid of the process a throwaway folder belongs to. */
export const OWNER_FILE = 'owner.pid';

export interface ThrowawayFolderOptions {
  /** Folder in os.tmpdir() shared by every run of one kind, e.g. `jobs-server-test-pg-<uid>`. */
  parentName: string;
  /** Where a run keeps its cluster inside its folder: `data` unless given. */
  clusterDirName?: string;
  /** The server programs (findPostgresBinDir), to stop the clusters of dead owners; without them
   * those folders are only removed. */
  binDir: string | undefined;
  /** More cleanup of a dead owner's folder (e.g. processes it recorded), before its cluster is stopped. */
  cleanStale?: (folder: string) => Promise<void>;
}

export interface ThrowawayFolder {
  /** `<tmpdir>/<parentName>/<pid>-<random>`. */
  path: string;
  /** Where the cluster goes (not created yet). */
  clusterDir: string;
  remove(): Promise<void>;
}

/**
 * Stops and removes what runs that were killed before their teardown left behind: folders whose
 * owner is dead, or that name no owner and are older than a minute (still being created otherwise).
 */
async function removeStaleFolders(parent: string, options: ThrowawayFolderOptions): Promise<void> {
  const names = await fs.readdir(parent).catch(() => [] as string[]);
  await Promise.all(
    names.map(async (name) => {
      const folder = path.join(parent, name);
      const owner = Number(await fs.readFile(path.join(folder, OWNER_FILE), 'utf8').catch(() => ''));
      if (owner > 0 ? isProcessAlive(owner) : Date.now() - (await fs.stat(folder)).mtimeMs < 60_000) return;
      await options.cleanStale?.(folder);
      const clusterDir = path.join(folder, options.clusterDirName ?? 'data');
      if (options.binDir && existsSync(path.join(clusterDir, 'postmaster.pid'))) {
        const binDir = options.binDir;
        await stopCluster({ binDir, clusterDir, mode: 'immediate', timeoutSeconds: 10 }).catch(() => {});
      }
      await fs.rm(folder, { recursive: true, force: true });
    }),
  );
}

/**
 * A folder of this process under `<tmpdir>/<parentName>`, with its pid in `owner.pid`, after the
 * folders of dead owners there were cleaned up.
 */
export async function createThrowawayFolder(options: ThrowawayFolderOptions): Promise<ThrowawayFolder> {
  const parent = path.join(os.tmpdir(), options.parentName);
  await fs.mkdir(parent, { recursive: true });
  // Whatever the umask: as root, the postgres user must get through it to its cluster.
  await fs.chmod(parent, 0o755);
  await removeStaleFolders(parent, options);
  const folder = path.join(parent, `${process.pid}-${randomBytes(4).toString('hex')}`);
  await fs.mkdir(folder, { recursive: true });
  await fs.chmod(folder, 0o755);
  await fs.writeFile(path.join(folder, OWNER_FILE), String(process.pid));
  return {
    path: folder,
    clusterDir: path.join(folder, options.clusterDirName ?? 'data'),
    remove: () => fs.rm(folder, { recursive: true, force: true }),
  };
}
