import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LIFECYCLE_COLUMNS } from '../../src/db/job-columns.js';
import { alternate, median, runsOf, type Side } from '../lib/alternate.js';
import { runToEnd } from '../lib/children.js';
import { type BenchContext, httpSide } from '../lib/context.js';
import { comparisonTables, fmt, ratioText, type Section, verdictFor } from '../lib/report.js';

/** pgbench running the status route's SELECT by random id: PostgreSQL's own ceiling for it. */
function pgbenchSide(ctx: BenchContext, mode: 'extended' | 'prepared', script: string): Side {
  const pgbench = ctx.database.pgbench as string;
  return {
    name: `pgbench -M ${mode}`,
    async run() {
      const output = await runToEnd(
        pgbench,
        [
          '-n',
          '-f',
          script,
          '-c',
          String(ctx.options.poolSize),
          '-j',
          '2',
          '-T',
          String(ctx.options.durationSeconds),
          '-M',
          mode,
          ctx.database.url,
        ],
        { timeoutMs: (ctx.options.durationSeconds + 30) * 1000 },
      );
      const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(output)?.[1]);
      const average = Number(/latency average = ([\d.]+) ms/.exec(output)?.[1]);
      if (!Number.isFinite(tps)) throw new Error(`cannot read pgbench's output:\n${output}`);
      return {
        rate: tps,
        latency: { count: 0, p50: Number.NaN, p99: Number.NaN, mean: average, max: Number.NaN },
        notes: `latency average ${average} ms`,
      };
    },
  };
}

export async function statusScenario(ctx: BenchContext): Promise<Section> {
  const { options } = ctx;
  const pick = { idPrefix: ctx.readPrefix, count: options.rows };
  const server = httpSide(ctx, 'server', ctx.server, {
    connections: options.connections,
    method: 'GET',
    path: { template: '/v1/jobs/{id}/status', ...pick },
    headers: { 'api-key': ctx.tenants.reads.key },
  });
  const reference = httpSide(ctx, 'reference', ctx.reference, {
    connections: options.connections,
    method: 'GET',
    path: { template: '/jobs/{id}/status', ...pick },
    headers: {},
  });
  const sides: Side[] = [server, reference];
  if (ctx.database.pgbench) {
    const width = 21 - ctx.readPrefix.length;
    const script = path.join(ctx.run.runDir, 'status-select.sql');
    await writeFile(
      script,
      `\\set i random(1, ${options.rows})\n` +
        `select ${LIFECYCLE_COLUMNS.map((c) => `"${c}"`).join(', ')} from "jobs" ` +
        `where "id" = 'job_${ctx.readPrefix}' || lpad(:i::text, ${width}, '0') ` +
        `and "organization_id" = '${ctx.tenants.reads.organizationId}';\n`,
    );
    sides.push(pgbenchSide(ctx, 'extended', script), pgbenchSide(ctx, 'prepared', script));
  }
  ctx.log('status: warming up');
  await server.warmup();
  await reference.warmup();
  const c = await alternate('status', sides, options.rounds, {
    postmasterPid: ctx.database.postmasterPid,
    log: ctx.log,
  });
  const verdicts = [
    verdictFor(c, 'GET /v1/jobs/{id}/status', 'server', 'reference', 'req/s', { atLeast: 0.8 }),
  ];
  const lines = [
    `Random ids over ${options.rows.toLocaleString('en-US')} loaded jobs${options.quick ? ' (--quick: fewer rows than the 1M of the full run)' : ''}; ` +
      `${options.connections} HTTP connections; server pool ${options.poolSize}, reference pool ${options.poolSize}, ` +
      `pgbench ${options.poolSize} clients (-j 2) running the same SELECT (same columns, same WHERE) by random id.`,
    '',
    comparisonTables(c, 'req/s (pgbench: tx/s)'),
    '',
    `Server / reference: **${ratioText(c, 'server', 'reference').text}** (target ≥ 0.8).`,
  ];
  if (ctx.database.pgbench) {
    const tps = (side: string) => fmt.rate(median(runsOf(c, side).map((r) => r.rate)));
    lines.push(
      '',
      `PostgreSQL's ceiling for this query with ${options.poolSize} connections (the physical limit): ` +
        `${tps('pgbench -M extended')} tx/s unprepared (what node-postgres sends by default: parse, bind, execute per query), ` +
        `${tps('pgbench -M prepared')} tx/s prepared. ` +
        `Server / pgbench unprepared: ${ratioText(c, 'server', 'pgbench -M extended').text}; ` +
        `server / pgbench prepared: ${ratioText(c, 'server', 'pgbench -M prepared').text}. ` +
        'pgbench shares the two cores with PostgreSQL, as the server and the load driver do.',
    );
  } else {
    lines.push('', 'pgbench was not found: no PostgreSQL ceiling in this run.');
  }
  return { title: '1. GET /v1/jobs/{id}/status', markdown: lines.join('\n'), verdicts };
}
