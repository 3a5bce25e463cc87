/**
 * One run of a reference queue in its own process: enqueue `jobs` trivial jobs with the library's
 * own bulk API (not timed), answer 'ready', then on 'go' start its workers and time until the
 * database holds no unfinished job of this run. Each library is configured for throughput the way
 * its documentation says (see bench/README.md).
 *
 * Usage (forked by the harness): queue-drain.ts graphile|pgboss <databaseUrl> <jobs> <concurrency>
 */
import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import pg from 'pg';
import PgBoss from 'pg-boss';

const [library, databaseUrl, jobsArg, concurrencyArg] = process.argv.slice(2);
const jobs = Number(jobsArg);
const concurrency = Number(concurrencyArg);
const QUEUE = 'bench_noop';
const quiet = new Logger(() => () => {});

function send(message: unknown, then: () => void = () => {}) {
  process.send?.(message, then);
}

function go(): Promise<void> {
  return new Promise((resolve) => {
    process.once('message', () => resolve());
  });
}

/** CPU and peak memory of this process from `since` (process.cpuUsage() then) to now. */
function usage(since: NodeJS.CpuUsage, startedAt: number) {
  const cpu = process.cpuUsage(since);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const rss = process.resourceUsage().maxRSS * 1024;
  return {
    cpuSeconds,
    cpuCores: cpuSeconds / ((performance.now() - startedAt) / 1000),
    rssBeforeBytes: Number.NaN,
    peakRssBytes: rss,
    peakRssIsPerRun: false,
  };
}

/** Polls until `remaining()` is 0: completions may be batched, so the handler count is not enough. */
async function untilDrained(remaining: () => Promise<number>) {
  for (;;) {
    if ((await remaining()) === 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function graphile() {
  const utils = await makeWorkerUtils({ connectionString: databaseUrl, logger: quiet });
  await utils.migrate();
  for (let i = 0; i < jobs; i += 5000) {
    const batch = Array.from({ length: Math.min(5000, jobs - i) }, (_, k) => ({
      identifier: QUEUE,
      payload: { i: i + k },
    }));
    await utils.addJobs(batch);
  }
  await utils.withPgClient((c) => c.query('analyze graphile_worker._private_jobs'));
  send({ ready: true });
  await go();
  let handled = 0;
  let allHandled: () => void = () => {};
  const handledPromise = new Promise<void>((r) => {
    allHandled = r;
  });
  const started = performance.now();
  const cpuAtStart = process.cpuUsage();
  const runner = await run({
    connectionString: databaseUrl,
    concurrency,
    maxPoolSize: concurrency + 2,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: quiet,
    taskList: {
      [QUEUE]: async () => {
        handled++;
        if (handled === jobs) allHandled();
      },
    },
    // Graphile's batching (https://worker.graphile.org/docs/performance#batching): fetch and lock
    // 500 jobs at a time into a local queue, and complete jobs in batches.
    preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0 } },
  });
  await handledPromise;
  await untilDrained(async () => {
    const { rows } = await utils.withPgClient((c) =>
      c.query<{ n: string }>(
        `select count(*) as n from graphile_worker._private_jobs j
         join graphile_worker._private_tasks t on t.id = j.task_id where t.identifier = $1`,
        [QUEUE],
      ),
    );
    return Number(rows[0].n);
  });
  const seconds = (performance.now() - started) / 1000;
  const used = usage(cpuAtStart, started);
  await runner.stop();
  await utils.release();
  return { seconds, handled, usage: used };
}

async function pgboss() {
  const boss = new PgBoss({ connectionString: databaseUrl, max: 20, supervise: false, schedule: false });
  boss.on('error', (error) => process.stderr.write(`pg-boss: ${String(error)}\n`));
  await boss.start();
  await boss.createQueue(QUEUE);
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query('delete from pgboss.job where name = $1', [QUEUE]);
  for (let i = 0; i < jobs; i += 5000) {
    const batch = Array.from({ length: Math.min(5000, jobs - i) }, (_, k) => ({
      name: QUEUE,
      data: { i: i + k },
    }));
    await boss.insert(batch);
  }
  // Without statistics the planner sorts the whole backlog for every fetch (baselines.md).
  await admin.query('analyze pgboss.job');
  send({ ready: true });
  await go();
  let handled = 0;
  let allHandled: () => void = () => {};
  const handledPromise = new Promise<void>((r) => {
    allHandled = r;
  });
  const started = performance.now();
  const cpuAtStart = process.cpuUsage();
  // pg-boss's throughput setting: many work loops, each fetching a batch; one loop is capped by
  // its polling interval (batch / interval).
  for (let n = 0; n < concurrency; n++) {
    await boss.work(QUEUE, { batchSize: 100, pollingIntervalSeconds: 0.5 }, async (batch) => {
      handled += batch.length;
      if (handled >= jobs) allHandled();
    });
  }
  await handledPromise;
  await untilDrained(async () => {
    const { rows } = await admin.query<{ n: string }>(
      `select count(*) as n from pgboss.job where name = $1 and state <> 'completed'`,
      [QUEUE],
    );
    return Number(rows[0].n);
  });
  const seconds = (performance.now() - started) / 1000;
  const used = usage(cpuAtStart, started);
  await boss.offWork(QUEUE);
  await boss.stop({ graceful: false, wait: true, close: true }).catch(() => {});
  await admin.end();
  return { seconds, handled, usage: used };
}

process.on('disconnect', () => process.exit(0));
(library === 'graphile' ? graphile() : pgboss()).then(
  (result) => {
    send({ done: true, jobs, ...result }, () => process.exit(0));
  },
  (error: unknown) => {
    send(
      { done: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) },
      () => process.exit(1),
    );
  },
);
