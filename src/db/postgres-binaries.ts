import { execFile, spawn } from 'node:child_process';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The server programs a cluster needs; a folder holding only client tools (psql) is not enough. */
const REQUIRED_PROGRAMS = ['initdb', 'pg_ctl', 'postgres'] as const;
export type PostgresProgram = (typeof REQUIRED_PROGRAMS)[number];

export class PostgresBinariesNotFoundError extends Error {
  override name = 'PostgresBinariesNotFoundError';
}

export function postgresBinariesHelp(): string {
  return (
    'Install the PostgreSQL server (e.g. `apt-get install postgresql` on Debian/Ubuntu, ' +
    '`brew install postgresql@15` on macOS), or set PG_BINDIR to the folder holding initdb and pg_ctl, ' +
    'or set DATABASE_URL to use an existing PostgreSQL server.'
  );
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await fs.access(file, constants.X_OK);
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

async function hasServerPrograms(dir: string): Promise<boolean> {
  for (const program of REQUIRED_PROGRAMS) {
    if (!(await isExecutable(path.join(dir, program)))) return false;
  }
  return true;
}

async function pgConfigBinDir(): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync('pg_config', ['--bindir'], { timeout: 5000 });
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Folders named `<prefix><version><suffix>` under `parent`, newest version first. */
async function versionedDirs(parent: string, prefix: string, suffix: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(parent);
  } catch {
    return [];
  }
  const versioned = names
    .filter((n) => n.startsWith(prefix) && /^\d+(\.\d+)?$/.test(n.slice(prefix.length)))
    .map((n) => ({ dir: path.join(parent, n, suffix), version: Number.parseFloat(n.slice(prefix.length)) }));
  return versioned.sort((a, b) => b.version - a.version).map((v) => v.dir);
}

/**
 * Finds the folder holding initdb, pg_ctl and postgres: `explicit` (PG_BINDIR) if given, else
 * `pg_config --bindir`, else PATH, else the newest of the usual package locations. Throws
 * PostgresBinariesNotFoundError, whose message says what to install or set.
 */
export async function findPostgresBinDir(explicit?: string): Promise<string> {
  if (explicit) {
    const dir = path.resolve(explicit);
    if (await hasServerPrograms(dir)) return dir;
    throw new PostgresBinariesNotFoundError(
      `PG_BINDIR is set to ${dir}, but that folder does not hold the PostgreSQL server programs ` +
        `(${REQUIRED_PROGRAMS.join(', ')}). ${postgresBinariesHelp()}`,
    );
  }
  const fromPath = (process.env.PATH ?? '').split(path.delimiter).filter((d) => path.isAbsolute(d));
  const candidates = [
    await pgConfigBinDir(),
    ...fromPath,
    ...(await versionedDirs('/usr/lib/postgresql', '', 'bin')), // Debian, Ubuntu
    ...(await versionedDirs('/usr', 'pgsql-', 'bin')), // RHEL and Fedora (PGDG packages)
    ...(await versionedDirs('/opt/homebrew/opt', 'postgresql@', 'bin')), // Homebrew, Apple silicon
    ...(await versionedDirs('/usr/local/opt', 'postgresql@', 'bin')), // Homebrew, Intel
  ];
  for (const dir of candidates) {
    if (dir && (await hasServerPrograms(dir))) return dir;
  }
  throw new PostgresBinariesNotFoundError(
    `No PostgreSQL server programs (${REQUIRED_PROGRAMS.join(', ')}) found: looked at PG_BINDIR, ` +
      `pg_config --bindir, PATH and /usr/lib/postgresql/*/bin. ${postgresBinariesHelp()}`,
  );
}

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

/** Major version of the server programs in `binDir`, from `postgres --version`. */
export async function postgresMajorVersion(binDir: string): Promise<number> {
  const { stdout } = await execFileAsync(path.join(binDir, 'postgres'), ['--version'], { timeout: 5000 });
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(stdout);
  if (!match)
    throw new Error(`cannot read the version of ${path.join(binDir, 'postgres')}: ${stdout.trim()}`);
  const major = Number(match[1]);
  // Before 10 the major version had two parts (9.6).
  return major < 10 && match[2] ? Number(`${major}.${match[2]}`) : major;
}
