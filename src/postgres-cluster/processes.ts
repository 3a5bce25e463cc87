import { promises as fs } from 'node:fs';

/**
 * What the process with `pid` is: `postgres`; `zombie` (killed, not yet reaped by its parent or
 * init: it still counts as alive for PostgreSQL's own stale-lock check, so a start fails); `other`
 * (the pid was reused by an unrelated program); or `gone`. Without /proc (macOS) a live process is
 * taken to be postgres.
 */
export async function processState(pid: number): Promise<'postgres' | 'zombie' | 'other' | 'gone'> {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return 'gone';
  }
  let stat: string;
  try {
    stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && process.platform === 'linux') return 'gone';
    return 'postgres';
  }
  // "pid (comm) state ...": comm may itself hold parentheses, so split at the last one.
  const close = stat.lastIndexOf(')');
  const comm = stat.slice(stat.indexOf('(') + 1, close);
  const state = stat.slice(close + 2, close + 3);
  if (state === 'Z' || state === 'X') return 'zombie';
  return comm === 'postgres' || comm === 'postmaster' ? 'postgres' : 'other';
}

/** Whether a process with this pid exists (one of another user's counts). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
