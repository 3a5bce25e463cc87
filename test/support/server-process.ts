import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '../../src/postgres-cluster/ports.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

/** One line of the server's pino output. */
export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** The real server (`src/server.ts`) as a child process: a crash shows as the child exiting. */
export interface ServerProcess {
  url: string;
  /** Every JSON line the server wrote to stdout so far, in order. */
  logs: LogLine[];
  /** What stderr received (a crash's stack). */
  stderr(): string;
  /** Set once the process ended. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** SIGTERM, then SIGKILL if it is still running after 15 s. */
  stop(): Promise<void>;
  /** Sends `signal` (SIGKILL: the process dies mid-request) and waits for the process to end. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `node --import tsx src/server.ts` on a free port of 127.0.0.1 with only the given
 * variables (and PATH, HOME, TMPDIR) in its environment; resolves once it logged that it is ready.
 */
export async function startServerProcess(env: Record<string, string>): Promise<ServerProcess> {
  const port = await findFreePort();
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let stderr = '';
  let pending = '';
  let onReady: (() => void) | undefined;
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const text of lines) {
      if (!text.trim()) continue;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { level: 0, msg: text };
      }
      logs.push(line);
      if (line.msg?.startsWith('jobs server ready')) onReady?.();
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const server: ServerProcess = {
    url: `http://127.0.0.1:${port}`,
    logs,
    stderr: () => stderr,
    exit: undefined,
    async stop() {
      if (server.exit) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(kill);
    },
    async kill(signal) {
      if (server.exit) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      await exited;
    },
  };
  child.on('exit', (code, signal) => {
    server.exit = { code, signal };
  });

  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    child.once('exit', (code) =>
      reject(new Error(`the server exited (code ${code}) before it was ready:\n${stderr}`)),
    );
    setTimeout(
      () => reject(new Error(`the server was not ready within ${READY_TIMEOUT_MS} ms:\n${stderr}`)),
      READY_TIMEOUT_MS,
    ).unref();
  });
  try {
    await ready;
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}
