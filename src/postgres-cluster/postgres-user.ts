import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { PostgresProgram } from './binaries.js';

const execFileAsync = promisify(execFile);

/** initdb, pg_ctl and postgres refuse to run as root; as root they are run as this user. */
export const POSTGRES_OS_USER = 'postgres';

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

let cachedPostgresUserIds: Promise<{ uid: number; gid: number }> | undefined;

/** uid and gid of the `postgres` OS user; only asked for when running as root. */
export function postgresUserIds(): Promise<{ uid: number; gid: number }> {
  cachedPostgresUserIds ??= (async () => {
    try {
      const [uid, gid] = await Promise.all(
        ['-u', '-g'].map(async (flag) =>
          Number((await execFileAsync('id', [flag, POSTGRES_OS_USER])).stdout.trim()),
        ),
      );
      return { uid, gid };
    } catch {
      cachedPostgresUserIds = undefined;
      throw new Error(
        `Running as root, and PostgreSQL refuses to run as root; there is no \`${POSTGRES_OS_USER}\` user to run ` +
          `it as. Create one (e.g. \`useradd --system --user-group ${POSTGRES_OS_USER}\`), run this process as a ` +
          'non-root user, or set DATABASE_URL to use an existing PostgreSQL server.',
      );
    }
  })();
  return cachedPostgresUserIds;
}

export interface ProgramResult {
  exitCode: number | null;
  /** stdout and stderr interleaved as they came. */
  output: string;
}

/**
 * Runs a program of `binDir` (or any command when `binDir` is undefined) as the current user, or
 * as the `postgres` user through `runuser` when running as root. Never throws on a non-zero exit:
 * callers decide what a failure means.
 */
export async function runAsPostgresUser(
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number } = {},
): Promise<ProgramResult> {
  let file = command;
  let argv = [...args];
  if (isRoot()) {
    await postgresUserIds();
    file = 'runuser';
    argv = ['-u', POSTGRES_OS_USER, '--', command, ...args];
  }
  return new Promise((resolve, reject) => {
    // cwd '/': the postgres user may not be allowed into ours, and pg_ctl resolves paths from it.
    const child = spawn(file, argv, {
      cwd: '/',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: options.timeoutMs,
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ exitCode, output: output.trim() }));
  });
}

/** Runs one of the PostgreSQL programs of `binDir`, as the `postgres` user when running as root. */
export function runPostgresProgram(
  binDir: string,
  program: PostgresProgram,
  args: readonly string[],
  options: { timeoutMs?: number } = {},
): Promise<ProgramResult> {
  return runAsPostgresUser(path.join(binDir, program), args, options);
}

/**
 * Creates `dir` (and its parents) so that the user PostgreSQL runs as owns it and can use it:
 * as root, hands it to the `postgres` user and checks that user can reach it through its parents.
 */
export async function preparePostgresDirectory(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  if (!isRoot()) return;
  const { uid, gid } = await postgresUserIds();
  await fs.chown(dir, uid, gid);
  const probe = await runAsPostgresUser('test', ['-w', dir, '-a', '-x', dir]);
  if (probe.exitCode !== 0) {
    throw new Error(
      `The \`${POSTGRES_OS_USER}\` user (PostgreSQL refuses to run as root) cannot use ${dir}: every parent ` +
        `folder must be searchable by it (e.g. \`chmod o+x\` on the parent that is not). Choose a data folder ` +
        'elsewhere (DATA_DIR), run as a non-root user, or set DATABASE_URL.',
    );
  }
}
