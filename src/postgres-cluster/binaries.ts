import { execFile } from 'node:child_process';
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
