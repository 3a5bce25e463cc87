import { promises as fs } from 'node:fs';
import path from 'node:path';
import { preparePostgresDirectory, runPostgresProgram } from './postgres-user.js';

/** Superuser created by initdb, whatever OS user runs the cluster. */
export const CLUSTER_SUPERUSER = 'postgres';

export type SettingValue = string | number | boolean;

function formatSetting(value: SettingValue): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'number') return String(value);
  return `'${value.replaceAll("'", "''")}'`;
}

/** The tail of a log file, for error messages; empty when it cannot be read. */
async function logTail(logFile: string, lines = 20): Promise<string> {
  try {
    return (await fs.readFile(logFile, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export interface InitClusterOptions {
  binDir: string;
  /** Must not exist yet, or be empty. */
  clusterDir: string;
  /** Written to postgresql.conf, e.g. `{ listen_addresses: '127.0.0.1' }`. */
  settings: Record<string, SettingValue>;
  /** initdb --no-sync: for throwaway clusters, whose files need not survive a power cut. */
  noSync?: boolean;
}

/**
 * initdb with UTF8, the C locale and a `postgres` superuser, then settings appended to
 * postgresql.conf and a pg_hba.conf that trusts 127.0.0.1 and nothing else.
 */
export async function initCluster(options: InitClusterOptions): Promise<void> {
  const { binDir, clusterDir } = options;
  await preparePostgresDirectory(clusterDir);
  const args = [
    '--pgdata',
    clusterDir,
    '--username',
    CLUSTER_SUPERUSER,
    '--auth=trust',
    '--encoding=UTF8',
    '--locale=C',
    ...(options.noSync ? ['--no-sync'] : []),
  ];
  const result = await runPostgresProgram(binDir, 'initdb', args, { timeoutMs: 120_000 });
  if (result.exitCode !== 0) {
    throw new Error(`initdb failed for ${clusterDir} (exit code ${result.exitCode}):\n${result.output}`);
  }
  const settings = Object.entries(options.settings).map(
    ([name, value]) => `${name} = ${formatSetting(value)}`,
  );
  await fs.appendFile(
    path.join(clusterDir, 'postgresql.conf'),
    `\n# Added by jobs-server when the cluster was created.\n${settings.join('\n')}\n`,
  );
  // Rewriting existing files keeps their owner, the postgres user when running as root.
  await fs.writeFile(
    path.join(clusterDir, 'pg_hba.conf'),
    '# Written by jobs-server: the cluster listens on 127.0.0.1 only (listen_addresses), and\n' +
      '# connections from this machine are trusted.\n' +
      'host all all 127.0.0.1/32 trust\n',
  );
}

export class ClusterStartError extends Error {
  override name = 'ClusterStartError';
  constructor(
    message: string,
    /** Another program holds the port. */
    readonly portInUse: boolean,
    readonly logFile: string,
  ) {
    super(message);
  }
}

export interface StartClusterOptions {
  binDir: string;
  clusterDir: string;
  port: number;
  /** Written by the postgres user: inside the cluster folder, or in a folder that user owns. */
  logFile: string;
  timeoutSeconds?: number;
}

/** pg_ctl start, waiting until the server accepts connections. */
export async function startCluster(options: StartClusterOptions): Promise<void> {
  const { binDir, clusterDir, port, logFile } = options;
  const timeout = options.timeoutSeconds ?? 60;
  const args = ['start', '--pgdata', clusterDir, '--log', logFile, '--wait', '--timeout', String(timeout)];
  // The port is the one option given on the command line, so that a changed port needs no config edit.
  args.push('-o', `-p ${port}`);
  const result = await runPostgresProgram(binDir, 'pg_ctl', args, { timeoutMs: (timeout + 10) * 1000 });
  if (result.exitCode === 0) return;
  const tail = await logTail(logFile);
  const portInUse = /could not bind .*Address already in use|could not create any TCP\/IP sockets/.test(tail);
  throw new ClusterStartError(
    `pg_ctl start failed for ${clusterDir} on port ${port} (exit code ${result.exitCode}):\n${result.output}\n` +
      `Server log ${logFile}${tail ? `, last lines:\n${tail}` : ' is empty.'}`,
    portInUse,
    logFile,
  );
}

export interface StopClusterOptions {
  binDir: string;
  clusterDir: string;
  /** fast: roll back sessions and shut down cleanly; immediate: no checkpoint, for throwaway clusters. */
  mode: 'fast' | 'immediate';
  timeoutSeconds?: number;
}

/** pg_ctl stop, waiting until the server is gone. */
export async function stopCluster(options: StopClusterOptions): Promise<void> {
  const timeout = options.timeoutSeconds ?? 60;
  const args = [
    'stop',
    '--pgdata',
    options.clusterDir,
    '--mode',
    options.mode,
    '--wait',
    '--timeout',
    String(timeout),
  ];
  const result = await runPostgresProgram(options.binDir, 'pg_ctl', args, {
    timeoutMs: (timeout + 10) * 1000,
  });
  if (result.exitCode !== 0) {
    throw new Error(
      `pg_ctl stop failed for ${options.clusterDir} (exit code ${result.exitCode}):\n${result.output}`,
    );
  }
}

export interface PostmasterPid {
  pid: number;
  port: number;
  /** starting, stopping, ready or standby; empty while the postmaster writes the file. */
  status: string;
}

/** The lock file of a running (or killed) server, or undefined if there is none. */
export async function readPostmasterPid(clusterDir: string): Promise<PostmasterPid | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path.join(clusterDir, 'postmaster.pid'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  // Lines: pid, data dir, start time, port, socket dir, listen address, shared memory key, status.
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return { pid, port: Number(lines[3]), status: (lines[7] ?? '').trim() };
}
