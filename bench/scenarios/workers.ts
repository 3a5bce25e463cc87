import { sql } from 'kysely';
import { insertOrganization } from '../../src/auth/organization-repository.js';
import { alternate, type Side } from '../lib/alternate.js';
import type { BenchContext } from '../lib/context.js';
import { bulkInsertJobs, createFleetKey } from '../lib/fixtures.js';
import { type QueueDrain, startQueueDrain } from '../lib/processes.js';
import { comparisonTables, ratioText, type Section, verdictFor } from '../lib/report.js';
import type { DrainResult } from '../load/protocol.js';

const GRAPHILE = 'graphile-worker 0.17.3';
const PGBOSS = 'pg-boss 10.4.2';

/** Throughput settings of each side; the README and the report say why. */
export const WORKER_SETTINGS = {
  httpLoops: 4,
  httpBatch: 100,
  sdkConcurrency: 200,
  sdkBatch: 100,
  graphileConcurrency: 24,
  pgbossLoops: 50,
};

/** Organizations whose jobs the fleet drain claims in turn. */
const FLEET_ORGANIZATIONS = 50;

export async function workersScenario(ctx: BenchContext): Promise<Section> {
  const { options, tenants } = ctx;
  const jobs = options.workerJobs;
  let batch = 0;
  const fleetKey = await createFleetKey(ctx.db);
  const fleetOrganizations = await Promise.all(
    Array.from({ length: FLEET_ORGANIZATIONS }, (_, i) => insertOrganization(ctx.db, `bench fleet ${i}`)),
  );
  /** The same number of queued jobs, spread over the fleet's organizations (not timed). */
  const loadFleet = async () => {
    batch++;
    for (const [i, org] of fleetOrganizations.entries()) {
      const count = Math.floor(jobs / FLEET_ORGANIZATIONS) + (i < jobs % FLEET_ORGANIZATIONS ? 1 : 0);
      await bulkInsertJobs(ctx.db, {
        organizationId: org.id,
        count,
        idPrefix: `f${String(batch).padStart(3, '0')}${String(i).padStart(2, '0')}`,
        status: 'queued',
      });
    }
    await sql`analyze jobs`.execute(ctx.db);
  };
  const fleetSide: Side = {
    name: 'server, HTTP loop, fleet of 50 organizations',
    pid: () => ctx.server.pid,
    before: loadFleet,
    async run() {
      const result = await ctx.driver.send<DrainResult>({
        kind: 'drain',
        variant: 'http-loop',
        baseUrl: ctx.server.baseUrl,
        key: fleetKey,
        jobs,
        concurrency: WORKER_SETTINGS.httpLoops,
        batchSize: WORKER_SETTINGS.httpBatch,
        organizationIds: fleetOrganizations.map((org) => org.id),
      });
      return { rate: result.jobsPerSecond, notes: `${result.jobs} jobs in ${result.seconds.toFixed(2)} s` };
    },
  };
  /** Queued jobs of the drain organisation, loaded straight into the table (not timed). */
  const loadOurs = async () => {
    batch++;
    await bulkInsertJobs(ctx.db, {
      organizationId: tenants.drain.organizationId,
      count: jobs,
      idPrefix: `d${String(batch).padStart(3, '0')}`,
      status: 'queued',
    });
    await sql`analyze jobs`.execute(ctx.db);
  };
  const ourSide = (
    name: string,
    variant: 'http-loop' | 'sdk',
    concurrency: number,
    batchSize: number,
  ): Side => ({
    name,
    pid: () => ctx.server.pid,
    before: loadOurs,
    async run() {
      const result = await ctx.driver.send<DrainResult>({
        kind: 'drain',
        variant,
        baseUrl: ctx.server.baseUrl,
        key: tenants.drain.key,
        jobs,
        concurrency,
        batchSize,
      });
      return { rate: result.jobsPerSecond, notes: `${result.jobs} jobs in ${result.seconds.toFixed(2)} s` };
    },
  });
  const librarySide = (name: string, library: 'graphile' | 'pgboss', concurrency: number): Side => {
    let drain: QueueDrain | undefined;
    return {
      name,
      pid: () => drain?.pid,
      async before() {
        drain = await startQueueDrain(ctx.run, library, ctx.database.url, jobs, concurrency);
      },
      async run() {
        const current = drain as QueueDrain;
        current.go();
        const { seconds, usage } = await current.finish();
        return { rate: jobs / seconds, usage, notes: `${jobs} jobs in ${seconds.toFixed(2)} s` };
      },
    };
  };
  const s = WORKER_SETTINGS;
  const sides = [
    ourSide('server, HTTP loop', 'http-loop', s.httpLoops, s.httpBatch),
    ourSide('server, SDK createWorker', 'sdk', s.sdkConcurrency, s.sdkBatch),
    fleetSide,
    librarySide(GRAPHILE, 'graphile', s.graphileConcurrency),
    librarySide(PGBOSS, 'pgboss', s.pgbossLoops),
  ];
  const c = await alternate('workers', sides, options.rounds, {
    postmasterPid: ctx.database.postmasterPid,
    log: ctx.log,
  });
  const markdown = [
    `${jobs.toLocaleString('en-US')} trivial jobs per run, queued before the run (not timed), drained end to end: ` +
      'claimed, handled by a no-op, completed. The rate is jobs / seconds from the start of consuming to the last ' +
      'completion committed. Each queue is configured for throughput:',
    '',
    `- **server, HTTP loop**: ${s.httpLoops} loops in the load process, each \`POST /v1/worker/claim\` ` +
      `{limit: ${s.httpBatch}, wait_seconds: 0}, then the completions of every claimed job in one ` +
      '`POST /v1/worker/reports` (keep-alive agent, 64 sockets), until a claim answers an empty list.',
    `- **server, HTTP loop, fleet of ${FLEET_ORGANIZATIONS} organizations**: the same loops with a fleet key, ` +
      `claiming across ${FLEET_ORGANIZATIONS} organizations (organization_ids) that hold the same number of jobs ` +
      'between them: the fair claim (organizations served in turn) against the claim of one organization.',
    `- **server, SDK createWorker**: the SDK's worker (sdk/src) in the load process, concurrency ${s.sdkConcurrency}, ` +
      `batchSize ${s.sdkBatch}, its report batching at its defaults (reportBatchSize 100, reportFlushMs 5), ` +
      'a handler that returns {} at once; done when it has reported every job.',
    `- **graphile-worker 0.17.3**: concurrency ${s.graphileConcurrency}, batching on (localQueue.size 500, ` +
      'completeJobBatchDelay 0), jobs added with addJobs, table analyzed; done when its jobs table is empty.',
    `- **pg-boss 10.4.2**: ${s.pgbossLoops} work loops × batchSize 100, pollingIntervalSeconds 0.5 (its minimum), ` +
      'jobs added with insert(), table analyzed; done when no job of the queue is left uncompleted.',
    '',
    "Process CPU is the server's for the first two sides (the worker runs in the load process) and the " +
      "library's own process for the other two (the worker is the database client there; its peak RSS is the " +
      "process's lifetime peak, enqueueing included).",
    '',
    comparisonTables(c, 'jobs/s'),
    '',
    `HTTP loop / graphile-worker: **${ratioText(c, 'server, HTTP loop', GRAPHILE).text}**; ` +
      `SDK / graphile-worker: **${ratioText(c, 'server, SDK createWorker', GRAPHILE).text}**; ` +
      `HTTP loop / pg-boss: ${ratioText(c, 'server, HTTP loop', PGBOSS).text}; ` +
      `SDK / pg-boss: ${ratioText(c, 'server, SDK createWorker', PGBOSS).text}.`,
  ];
  return {
    title: '4. Worker throughput',
    markdown: markdown.join('\n'),
    // The targets of the batched protocol: at least 0.7 of graphile-worker and 1.5 of pg-boss.
    verdicts: [
      verdictFor(c, 'drain, HTTP worker protocol (own loop)', 'server, HTTP loop', GRAPHILE, 'jobs/s', {
        atLeast: 0.7,
      }),
      verdictFor(c, 'drain, SDK createWorker', 'server, SDK createWorker', GRAPHILE, 'jobs/s', {
        atLeast: 0.7,
      }),
      verdictFor(c, 'drain, HTTP worker protocol vs pg-boss', 'server, HTTP loop', PGBOSS, 'jobs/s', {
        atLeast: 1.5,
      }),
      verdictFor(c, 'drain, SDK createWorker vs pg-boss', 'server, SDK createWorker', PGBOSS, 'jobs/s', {
        atLeast: 1.5,
      }),
      // A fair claim across organizations may cost at most 10% against one organization's claim.
      verdictFor(
        c,
        'drain, fair claim over 50 organizations vs one organization',
        'server, HTTP loop, fleet of 50 organizations',
        'server, HTTP loop',
        'jobs/s',
        { atLeast: 0.9 },
      ),
    ],
  };
}
