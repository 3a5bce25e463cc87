import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/** Linux reports CPU time in clock ticks; 100 per second on every mainstream kernel build. */
const TICKS_PER_SECOND = 100;

interface StatFields {
  ppid: number;
  /** utime + stime, seconds. */
  cpu: number;
  /** cutime + cstime: children already reaped, seconds. */
  childrenCpu: number;
}

function readStat(pid: number): StatFields | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): field n of proc(5) is fields[n - 3].
  const tick = (n: number) => Number(fields[n - 3]);
  return {
    ppid: tick(4),
    cpu: (tick(14) + tick(15)) / TICKS_PER_SECOND,
    childrenCpu: (tick(16) + tick(17)) / TICKS_PER_SECOND,
  };
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  return readStat(pid)?.cpu ?? Number.NaN;
}

/**
 * CPU seconds of a PostgreSQL server: the postmaster, its live backends, and the backends that
 * already exited (counted in the postmaster's cutime/cstime once reaped).
 */
export function postgresCpuSeconds(postmasterPid: number): number {
  const main = readStat(postmasterPid);
  if (!main) return Number.NaN;
  let total = main.cpu + main.childrenCpu;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat && stat.ppid === postmasterPid) total += stat.cpu;
  }
  return total;
}

function statusField(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    );
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Peak resident set size (bytes) since the process started or since resetPeakRss. */
export const peakRssBytes = (pid: number) => statusField(pid, 'VmHWM');
export const rssBytes = (pid: number) => statusField(pid, 'VmRSS');

/**
 * Sets the peak RSS back to the current RSS (proc(5): writing 5 to clear_refs), so that each run
 * gets its own peak. Answers false where that is not allowed; the peak is then the process's.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** What a process used over a run: call start() before and stop() after. */
export function measureProcess(pid: number) {
  const peakResettable = resetPeakRss(pid);
  const cpuStart = cpuSeconds(pid);
  const rssBefore = rssBytes(pid);
  const started = performance.now();
  return {
    stop() {
      const seconds = (performance.now() - started) / 1000;
      const cpu = cpuSeconds(pid) - cpuStart;
      return {
        cpuSeconds: cpu,
        /** Cores busy on average (1.0 = one core the whole run). */
        cpuCores: cpu / seconds,
        rssBeforeBytes: rssBefore,
        peakRssBytes: peakRssBytes(pid),
        peakRssIsPerRun: peakResettable,
      };
    },
  };
}

export type ProcessUsage = ReturnType<ReturnType<typeof measureProcess>['stop']>;
