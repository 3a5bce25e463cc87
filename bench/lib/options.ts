import { parseArgs } from 'node:util';

export const SCENARIOS = ['status', 'retrieve', 'create', 'workers', 'wait'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  quick: boolean;
  scenarios: Scenario[];
  /** A B pairs per comparison; each side runs this many times, alternating. */
  rounds: number;
  /** Seconds of load per measured run. */
  durationSeconds: number;
  /** Seconds of unmeasured load before a target's first run in a scenario (JIT, caches, pools). */
  warmupSeconds: number;
  /** Jobs in the table the read scenarios pick from. */
  rows: number;
  /** Trivial jobs each queue drains per run. */
  workerJobs: number;
  /** HTTP connections of the load driver for the read scenarios. */
  connections: number;
  /** The server's DATABASE_POOL_SIZE; the reference pool and pgbench use the same count. */
  poolSize: number;
  /** Clients held by the wait scenario. */
  waiters: number;
  /** Seconds the wait scenario counts queries while every client waits. */
  waitWindowSeconds: number;
  skipBuild: boolean;
  /** Runs the server under --cpu-prof and summarises the profile into the report. */
  profile: boolean;
  /** Copies the logs of the server, reference, driver and queue processes next to the report. */
  keepLogs: boolean;
  out: string | undefined;
}

const USAGE = `Usage: npm run bench -- [options]

  --quick                 100k rows, 2 s runs, 2 rounds, 1,500 jobs per drain: under two minutes on 2 cores
  --only <list>           scenarios to run, comma-separated: ${SCENARIOS.join(',')}
  --rounds <n>            alternating A/B rounds per comparison (default 3; quick 2)
  --duration <s>          seconds per measured run (default 10; quick 2)
  --rows <n>              jobs loaded for the read scenarios (default 1000000; quick 100000)
  --worker-jobs <n>       trivial jobs drained per queue run (default 10000; quick 1500)
  --connections <n>       HTTP connections for the read scenarios (default 64)
  --pool <n>              the server's DATABASE_POOL_SIZE; reference pool and pgbench clients match (default 10)
  --waiters <n>           long-polling clients in the wait scenario (default 1000)
  --skip-build            use the existing dist/ instead of running npm run build
  --profile               run the server under node --cpu-prof and add its hottest functions to the report
  --keep-logs             copy the logs of every process the run started to bench/results/logs-<date>/
  --out <file>            report path (default bench/results/<date>[-quick].md)

DATABASE_URL set: that server is used (a database is created on it and dropped at the end) instead of
a throwaway cluster. Without it, PostgreSQL server programs must be installed (PG_BINDIR to choose).`;

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
}

export function parseOptions(argv: string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      rows: { type: 'string' },
      'worker-jobs': { type: 'string' },
      connections: { type: 'string' },
      pool: { type: 'string' },
      waiters: { type: 'string' },
      'skip-build': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'keep-logs': { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return undefined;
  }
  const quick = values.quick ?? false;
  const scenarios = values.only ? values.only.split(',').map((s) => s.trim()) : [...SCENARIOS];
  for (const s of scenarios) {
    if (!(SCENARIOS as readonly string[]).includes(s)) {
      throw new Error(`--only: unknown scenario '${s}' (known: ${SCENARIOS.join(', ')})`);
    }
  }
  return {
    quick,
    scenarios: scenarios as Scenario[],
    rounds: positiveInt('rounds', values.rounds, quick ? 2 : 3),
    durationSeconds: positiveInt('duration', values.duration, quick ? 2 : 10),
    warmupSeconds: quick ? 1 : 3,
    rows: positiveInt('rows', values.rows, quick ? 100_000 : 1_000_000),
    workerJobs: positiveInt('worker-jobs', values['worker-jobs'], quick ? 1500 : 10_000),
    connections: positiveInt('connections', values.connections, 64),
    poolSize: positiveInt('pool', values.pool, 10),
    waiters: positiveInt('waiters', values.waiters, 1000),
    waitWindowSeconds: quick ? 2 : 10,
    skipBuild: values['skip-build'] ?? false,
    profile: values.profile ?? false,
    keepLogs: values['keep-logs'] ?? false,
    out: values.out,
  };
}
