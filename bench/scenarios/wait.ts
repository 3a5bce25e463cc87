import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchContext } from '../lib/context.js';
import { bulkInsertJobs, loadedJobId } from '../lib/fixtures.js';
import { readStats, type StatsDelta, statsDelta } from '../lib/postgres.js';
import { fmt, type Section } from '../lib/report.js';
import type { WaitersResult } from '../load/protocol.js';

const WAIT_SECONDS = 30;

/** Waits until the bench database's statement count stops growing: every waiter has done its first read. */
async function untilQuiet(ctx: BenchContext, expectedCalls: number, startCalls: number) {
  const deadline = Date.now() + 15_000;
  let last = -1;
  while (Date.now() < deadline) {
    const snapshot = await readStats(ctx.database, ctx.admin);
    const calls = [...snapshot.statements.values()].reduce((sum, s) => sum + s.calls, 0) - startCalls;
    if (calls >= expectedCalls && calls === last) return;
    last = calls;
    await sleep(300);
  }
}

export async function waitScenario(ctx: BenchContext): Promise<Section> {
  const { options, tenants } = ctx;
  const runs: { window: StatsDelta; result: WaitersResult }[] = [];
  const count = options.quick ? 1 : Math.min(options.rounds, 2);
  for (let round = 1; round <= count; round++) {
    const prefix = `w${round}`;
    await bulkInsertJobs(ctx.db, {
      organizationId: tenants.wait.organizationId,
      count: options.waiters,
      idPrefix: prefix,
      status: 'queued',
    });
    const jobIds = Array.from({ length: options.waiters }, (_, i) => loadedJobId(prefix, i + 1));
    const start = await readStats(ctx.database, ctx.admin);
    const startCalls = [...start.statements.values()].reduce((sum, s) => sum + s.calls, 0);
    await ctx.driver.send({
      kind: 'waiters-open',
      baseUrl: ctx.server.baseUrl,
      key: tenants.wait.key,
      databaseUrl: ctx.database.url,
      jobIds,
      waitSeconds: WAIT_SECONDS,
    });
    if (ctx.database.statements) await untilQuiet(ctx, options.waiters, startCalls);
    else await sleep(3000);
    const before = await readStats(ctx.database, ctx.admin);
    await sleep(options.waitWindowSeconds * 1000);
    const after = await readStats(ctx.database, ctx.admin);
    const result = await ctx.driver.send<WaitersResult>({ kind: 'waiters-complete', timeoutMs: 20_000 });
    const window = statsDelta(before, after);
    runs.push({ window, result });
    ctx.log(
      `  wait | round ${round}: ${window.statementCalls} statements in ${window.seconds.toFixed(1)} s while waiting; ` +
        `answer p50 ${fmt.ms(result.answerLatency.p50)} ms p99 ${fmt.ms(result.answerLatency.p99)} ms ` +
        `(notify p50 ${fmt.ms(result.notifyLatency.p50)} p99 ${fmt.ms(result.notifyLatency.p99)})`,
    );
  }

  const lines = [
    `${options.waiters.toLocaleString('en-US')} queued jobs, one HTTP connection each from the load process: ` +
      `\`GET /v1/jobs/{id}/status?wait_seconds=${WAIT_SECONDS}\`. Once every client has had its first read, the ` +
      `queries of the bench database are counted over ${options.waitWindowSeconds} s while they all wait ` +
      `(${ctx.database.statements ? 'pg_stat_statements calls, immediate' : 'pg_stat_database xact_commit; its counters are flushed up to 10 s late, so treat it as approximate'}), ` +
      'then one UPDATE completes all the jobs. Latency runs from the moment that UPDATE returned (committed) to each ' +
      'HTTP answer; the reference is a bare LISTEN connection in the same load process hearing the same commits.',
    '',
    '| run | queries/s while waiting | statements in window | xact_commit Δ | tup_returned Δ | answered completed | early answers | UPDATE ms | answer p50 ms | answer p99 ms | LISTEN p50 ms | LISTEN p99 ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  runs.forEach(({ window, result }, i) => {
    const qps = (ctx.database.statements ? window.statementCalls : window.xactCommit) / window.seconds;
    lines.push(
      `| ${i + 1} | ${qps.toFixed(2)} | ${window.statementCalls} | ${window.xactCommit} | ${window.tupReturned} | ${result.answered} / ${result.clients} | ${result.early} | ${fmt.ms(result.updateMs)} | ${fmt.ms(result.answerLatency.p50)} | ${fmt.ms(result.answerLatency.p99)} | ${fmt.ms(result.notifyLatency.p50)} | ${fmt.ms(result.notifyLatency.p99)} |`,
    );
  });
  const seen = new Map<string, number>();
  for (const { window } of runs)
    for (const s of window.byStatement) seen.set(s.query, (seen.get(s.query) ?? 0) + s.calls);
  if (seen.size > 0) {
    lines.push('', 'Statements that ran during the waiting windows (all runs):', '');
    for (const [query, calls] of [...seen.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8)) {
      lines.push(`- ${calls} × \`${query.replace(/\s+/g, ' ').slice(0, 160)}\``);
    }
  } else if (ctx.database.statements) {
    lines.push('', 'No statement ran in the bench database during the waiting windows.');
  }
  const last = runs[runs.length - 1];
  const qps = Math.max(
    ...runs.map(
      ({ window }) => (ctx.database.statements ? window.statementCalls : window.xactCommit) / window.seconds,
    ),
  );
  const statusReads = runs.reduce(
    (sum, { window }) =>
      sum +
      window.byStatement
        .filter((s) => /from "jobs" where "id"/.test(s.query))
        .reduce((a, s) => a + s.calls, 0),
    0,
  );
  return {
    title: '5. Bounded wait on the status route',
    markdown: lines.join('\n'),
    verdicts: [
      {
        what: `queries while ${options.waiters} clients wait`,
        figure: `${qps.toFixed(2)} /s (${statusReads} job reads)`,
        reference: 'none expected',
        ratio: '–',
        target: 'none',
        met: statusReads === 0,
      },
      {
        what: 'completion → answer, p50 / p99',
        figure: `${fmt.ms(last.result.answerLatency.p50)} / ${fmt.ms(last.result.answerLatency.p99)} ms`,
        reference: `LISTEN: ${fmt.ms(last.result.notifyLatency.p50)} / ${fmt.ms(last.result.notifyLatency.p99)} ms`,
        ratio: '–',
        target: 'reported',
        met: undefined,
      },
    ],
  };
}
