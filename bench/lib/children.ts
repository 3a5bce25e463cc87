import { type ChildProcess, type ForkOptions, fork, type SpawnOptions, spawn } from 'node:child_process';
import { once } from 'node:events';

/**
 * Every process the harness starts, so that any way out (normal end, an error, Ctrl-C, SIGTERM)
 * ends them all. Each child leads its own process group, and the group is what gets the signal:
 * `npm run build` and the shells it starts go with it.
 */
const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void>)[] = [];
const lastResorts: (() => void)[] = [];
let cleaning: Promise<void> | undefined;

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions = {}) {
  return track(spawn(command, args, { ...options, detached: true }));
}

export function forkTracked(module: string, args: readonly string[], options: ForkOptions = {}) {
  return track(fork(module, args, { ...options, detached: true }));
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals) {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  signalGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Runs at the end, newest first (a database is stopped after the processes that use it). */
export function onCleanup(cleanup: () => Promise<void>, lastResort?: () => void) {
  cleanups.unshift(cleanup);
  if (lastResort) lastResorts.unshift(lastResort);
}

export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all([...children].map((child) => stopChild(child)));
    for (const cleanup of cleanups) {
      await cleanup().catch((error) => process.stderr.write(`cleanup: ${String(error)}\n`));
    }
  })();
  return cleaning;
}

/** Ctrl-C and SIGTERM clean up, then exit; a second signal exits at once (the exit hook still runs). */
export function installSignalHandlers() {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) process.exit(130);
    signalled = true;
    process.stderr.write(`\n${signal}: stopping everything the benchmark started…\n`);
    void cleanupAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  // Whatever happened, no child outlives the harness.
  process.on('exit', () => {
    for (const child of children) signalGroup(child, 'SIGKILL');
    for (const lastResort of lastResorts) {
      try {
        lastResort();
      } catch {
        // Best effort while exiting.
      }
    }
  });
}

/** Runs a command to its end; rejects with its output when it fails. */
export async function runToEnd(
  command: string,
  args: readonly string[],
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<string> {
  const child = spawnTracked(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const timer = options.timeoutMs ? setTimeout(() => signalGroup(child, 'SIGKILL'), options.timeoutMs) : null;
  // 'close', not 'exit': by then both pipes are drained.
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  if (timer) clearTimeout(timer);
  if (code !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output.trim()}`);
  }
  return output;
}
