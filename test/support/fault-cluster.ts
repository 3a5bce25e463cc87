import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { findPostgresBinDir } from '../../src/postgres-cluster/binaries.js';
import { clusterUrl, withClient } from '../../src/postgres-cluster/connection.js';
import { readPostmasterPid, startCluster, stopCluster } from '../../src/postgres-cluster/control.js';
import { startThrowawayCluster } from '../../src/postgres-cluster/throwaway-cluster.js';

/**
 * A PostgreSQL cluster of one test file that the test may break: stop at once, start again on the
 * same port, pause, resume, terminate backends. Not the shared cluster of global-setup, which
 * every other file uses.
 */
export interface FaultCluster {
  port: number;
  /** URL of `database` on this cluster, as the superuser. */
  url(database: string): string;
  /** `pg_ctl stop -m immediate`: every backend dies at once; what was committed stays. */
  stopImmediately(): Promise<void>;
  /** `pg_ctl start` on the same port (crash recovery first after an immediate stop). */
  restart(): Promise<void>;
  /** Resumes a paused cluster, starts a stopped one: what a test that failed half-way left. */
  ensureRunning(): Promise<void>;
  /**
   * SIGSTOP to the postmaster, then to every process it started: connections stay open and
   * nothing answers; the kernel still accepts new TCP connections into the listen backlog.
   */
  pause(): Promise<void>;
  /** SIGCONT to every process pause() stopped. */
  resume(): void;
  /** Backend pids of the sessions named `applicationName` (pg_stat_activity). */
  backendPids(applicationName: string): Promise<number[]>;
  /** pg_terminate_backend(pid). */
  terminateBackend(pid: number): Promise<void>;
  /** Resumes, stops and removes the cluster; never throws. */
  close(): Promise<void>;
}

/** Pids of the processes whose parent is `parent` (Linux: /proc). */
async function childPids(parent: number): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === parent) pids.push(Number(name));
  }
  return pids;
}

export async function startFaultCluster(): Promise<FaultCluster> {
  const binDir = await findPostgresBinDir(process.env.PG_BINDIR);
  const cluster = await startThrowawayCluster({
    parentName: `jobs-server-test-pg-faults-${process.getuid?.() ?? 'user'}`,
    binDir,
    settings: {
      // synchronous_commit (on, PostgreSQL's default, said aloud: the shared test cluster turns it
      // off): a commit is answered once its WAL is written, so a 201 survives an immediate stop.
      // fsync may stay off: the kernel keeps what was written when postgres is killed.
      synchronous_commit: true,
      fsync: false,
      full_page_writes: false,
      max_connections: 100,
    },
  });
  const { clusterDir, port } = cluster;
  let paused: number[] = [];
  const admin = <T>(use: Parameters<typeof withClient<T>>[1]) =>
    withClient(clusterUrl(port, 'postgres'), use);

  const resume = () => {
    for (const pid of paused) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone already
      }
    }
    paused = [];
  };

  const restart = () =>
    startCluster({
      binDir,
      clusterDir,
      port,
      logFile: path.join(clusterDir, 'server.log'),
      timeoutSeconds: 30,
    });

  return {
    port,
    url: (database) => clusterUrl(port, database),
    stopImmediately: () => stopCluster({ binDir, clusterDir, mode: 'immediate', timeoutSeconds: 30 }),
    restart,
    async ensureRunning() {
      resume();
      if (!(await readPostmasterPid(clusterDir))) await restart();
    },
    async pause() {
      const postmaster = (await readPostmasterPid(clusterDir))?.pid;
      if (!postmaster) throw new Error(`no postmaster.pid in ${clusterDir}`);
      // The postmaster first: once it is stopped it cannot start another backend.
      process.kill(postmaster, 'SIGSTOP');
      paused.push(postmaster);
      for (const pid of await childPids(postmaster)) {
        process.kill(pid, 'SIGSTOP');
        paused.push(pid);
      }
    },
    resume,
    async backendPids(applicationName) {
      return admin(async (client) => {
        const { rows } = await client.query<{ pid: number }>(
          'select pid from pg_stat_activity where application_name = $1',
          [applicationName],
        );
        return rows.map((r) => r.pid);
      });
    },
    async terminateBackend(pid) {
      await admin((client) => client.query('select pg_terminate_backend($1)', [pid]));
    },
    async close() {
      resume();
      await cluster.stop();
    },
  };
}
