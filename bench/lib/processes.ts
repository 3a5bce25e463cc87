import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, createWriteStream } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DriverCommand, DriverReply } from '../load/protocol.js';
import { forkTracked, spawnTracked, stopChild } from './children.js';
import { PIDS_FILE } from './postgres.js';
import type { ProcessUsage } from './proc-stats.js';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = ['--import', 'tsx'];

export interface RunContext {
  runDir: string;
  log: (message: string) => void;
}

function remember(ctx: RunContext, child: ChildProcess) {
  if (child.pid) appendFileSync(path.join(ctx.runDir, PIDS_FILE), `${child.pid}\n`);
}

function logTo(ctx: RunContext, child: ChildProcess, name: string) {
  const file = createWriteStream(path.join(ctx.runDir, `${name}.log`), { flags: 'a' });
  child.stdout?.pipe(file);
  child.stderr?.pipe(file);
}

/** Something that answers HTTP on loopback and whose CPU and memory are measured. */
export interface Target {
  name: string;
  pid: number;
  baseUrl: string;
  stop(): Promise<void>;
}

async function waitForHttp(url: string, child: ChildProcess, timeoutMs: number, logFile: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the process exited (${child.exitCode}); see ${logFile}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await sleep(50);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms; see ${logFile}`);
}

/** The server as built for production: node dist/src/server.js, request logs off. */
export async function startServer(
  ctx: RunContext,
  options: { databaseUrl: string; port: number; poolSize: number; storeDir: string; cpuProfDir?: string },
): Promise<Target> {
  const args = [
    ...(options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : []),
    'dist/src/server.js',
  ];
  const child = spawnTracked(process.execPath, args, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      DATABASE_URL: options.databaseUrl,
      DATABASE_POOL_SIZE: String(options.poolSize),
      STORAGE_URL: `file://${options.storeDir}`,
      DATA_DIR: path.join(ctx.runDir, 'server-data'),
      HOST: '127.0.0.1',
      PORT: String(options.port),
      LOG_REQUESTS: 'false',
      LOG_LEVEL: 'warn',
    },
  });
  remember(ctx, child);
  logTo(ctx, child, 'server');
  const baseUrl = `http://127.0.0.1:${options.port}`;
  await waitForHttp(`${baseUrl}/healthz`, child, 30_000, path.join(ctx.runDir, 'server.log'));
  return {
    name: 'server',
    pid: child.pid as number,
    baseUrl,
    // SIGINT: the server's own graceful shutdown, which is also when --cpu-prof writes its profile.
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGINT');
      const timer = setTimeout(() => void stopChild(child, 0), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function startReference(
  ctx: RunContext,
  env: Record<string, string>,
  port: number,
  cpuProfDir?: string,
): Promise<Target> {
  const child = forkTracked(path.join(REPO_ROOT, 'bench/servers/reference-server.ts'), [], {
    cwd: REPO_ROOT,
    execArgv: [...TSX, ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [])],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { PATH: process.env.PATH, NODE_ENV: 'production', PORT: String(port), ...env },
  });
  remember(ctx, child);
  logTo(ctx, child, 'reference');
  await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(() => {
      throw new Error(`the reference server exited; see ${path.join(ctx.runDir, 'reference.log')}`);
    }),
  ]);
  return {
    name: 'reference',
    pid: child.pid as number,
    baseUrl: `http://127.0.0.1:${port}`,
    stop: () => stopChild(child),
  };
}

/** The load process, driven one command at a time. */
export async function startDriver(ctx: RunContext) {
  const child = forkTracked(path.join(REPO_ROOT, 'bench/load/driver.ts'), [], {
    cwd: REPO_ROOT,
    execArgv: TSX,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  remember(ctx, child);
  logTo(ctx, child, 'driver');
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let ready: () => void = () => {};
  const readyPromise = new Promise<void>((resolve) => {
    ready = resolve;
  });
  child.on('message', (reply: DriverReply) => {
    if (reply.id === 0) return ready();
    const entry = pending.get(reply.id);
    if (!entry) return;
    pending.delete(reply.id);
    if (reply.ok) entry.resolve(reply.result);
    else entry.reject(new Error(`load driver: ${reply.error}`));
  });
  child.once('exit', (code) => {
    for (const entry of pending.values()) entry.reject(new Error(`the load driver exited (${code})`));
    pending.clear();
  });
  await readyPromise;
  return {
    pid: child.pid as number,
    send<T>(command: DriverCommand): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, command });
      });
    },
    stop: () => stopChild(child),
  };
}

export type Driver = Awaited<ReturnType<typeof startDriver>>;

export interface QueueDrain {
  pid: number;
  /** Starts the library's workers: the timed part begins. */
  go(): void;
  /** Seconds from go to the last job finished, and the CPU the drain process used meanwhile. */
  finish(): Promise<{ seconds: number; usage?: ProcessUsage }>;
}

type DrainMessage = {
  ready?: boolean;
  done?: boolean;
  seconds?: number;
  error?: string;
  usage?: ProcessUsage;
};

/** One run of graphile-worker or pg-boss in a process of its own; see bench/workers/queue-drain.ts. */
export async function startQueueDrain(
  ctx: RunContext,
  library: 'graphile' | 'pgboss',
  databaseUrl: string,
  jobs: number,
  concurrency: number,
): Promise<QueueDrain> {
  const child = forkTracked(
    path.join(REPO_ROOT, 'bench/workers/queue-drain.ts'),
    [library, databaseUrl, String(jobs), String(concurrency)],
    { cwd: REPO_ROOT, execArgv: TSX, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
  );
  remember(ctx, child);
  logTo(ctx, child, `queue-${library}`);
  // 'close' comes after the IPC channel is drained, so a last message is never overtaken by it.
  const exited = once(child, 'close').then(([code]) => ({ error: `${library} drain exited (${code})` }));
  const next = () => Promise.race([once(child, 'message').then(([m]) => m as DrainMessage), exited]);
  const first: DrainMessage = await next();
  if (!first.ready) throw new Error(`${library} drain: ${first.error ?? 'did not get ready'}`);
  return {
    pid: child.pid as number,
    go: () => child.send({ go: true }),
    async finish() {
      const result: DrainMessage = await next();
      if (!result.done) throw new Error(`${library} drain: ${result.error}`);
      await exited;
      return { seconds: result.seconds as number, usage: result.usage };
    },
  };
}
