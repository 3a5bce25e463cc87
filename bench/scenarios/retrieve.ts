import { alternate, median, runsOf } from '../lib/alternate.js';
import { type BenchContext, httpSide } from '../lib/context.js';
import { comparisonTables, fmt, ratioText, type Section, verdictFor } from '../lib/report.js';

/** Concurrent restores of the 10 MiB job: the figure is the server's peak RSS while they run. */
const LARGE_RESTORES = 50;
const PAYLOAD_CONNECTIONS = 16;

export async function retrieveScenario(ctx: BenchContext): Promise<Section> {
  const { options, tenants, objects } = ctx;
  const auth = { 'api-key': tenants.reads.key };
  const postgresPid = ctx.database.postmasterPid;
  const markdown: string[] = [];

  // Lightweight: no storage access; the reference runs the same SELECT of the same columns.
  const pick = { idPrefix: ctx.readPrefix, count: options.rows };
  const light = [
    httpSide(ctx, 'server', ctx.server, {
      connections: options.connections,
      method: 'GET',
      path: { template: '/v1/jobs/{id}', ...pick },
      headers: auth,
    }),
    httpSide(ctx, 'reference', ctx.reference, {
      connections: options.connections,
      method: 'GET',
      path: { template: '/jobs/{id}', ...pick },
      headers: {},
    }),
  ];
  ctx.log('retrieve: warming up');
  for (const side of light) await side.warmup();
  const lightweight = await alternate('retrieve lightweight', light, options.rounds, {
    postmasterPid: postgresPid,
    log: ctx.log,
  });
  markdown.push(
    '### 2a. Lightweight (`GET /v1/jobs/{id}`)',
    '',
    `Random ids over the ${options.rows.toLocaleString('en-US')} loaded jobs, ${options.connections} connections. ` +
      'Reference: bare Fastify + pg, the same SELECT (same columns, same WHERE), no auth, no schema.',
    '',
    comparisonTables(lightweight, 'req/s'),
    '',
    `Server / reference: **${ratioText(lightweight, 'server', 'reference').text}**.`,
  );

  // include_request=true on a job whose request holds a 1 MiB data URL, offloaded at creation.
  const payload = [
    httpSide(ctx, 'server', ctx.server, {
      connections: PAYLOAD_CONNECTIONS,
      method: 'GET',
      path: { fixed: `/v1/jobs/${objects.oneMiB.jobId}?include_request=true` },
      headers: auth,
    }),
    httpSide(ctx, 'reference', ctx.reference, {
      connections: PAYLOAD_CONNECTIONS,
      method: 'GET',
      path: { fixed: '/objects/1mib' },
      headers: {},
    }),
  ];
  // --quick: the processes are warm from 2a; only the full run warms each route up again.
  if (!options.quick) for (const side of payload) await side.warmup();
  const restore = await alternate('retrieve include_request 1 MiB', payload, options.rounds, {
    postmasterPid: postgresPid,
    log: ctx.log,
  });
  markdown.push(
    '',
    '### 2b. `GET /v1/jobs/{id}?include_request=true`, request holding a 1 MiB data URL',
    '',
    `${PAYLOAD_CONNECTIONS} connections, the same job every time. Reference: a bare Fastify route that reads the ` +
      'same object file from the same file store, base64-encodes it into the data URL and answers it as the ' +
      'request JSON — the least any server must do to answer this request. A direct loop in the load process ' +
      'would leave out HTTP and JSON on one side only; a reference server pays them like the server does, so ' +
      'the ratio isolates what the server adds (auth, the job and artifact queries, the size and sha256 check, ' +
      'the response schema).',
    '',
    comparisonTables(restore, 'req/s'),
    '',
    `Server / direct read: **${ratioText(restore, 'server', 'reference').text}** (target ≥ 0.8).`,
  );

  // Memory: 50 restores of a 10 MiB object at once. Slow by nature (~10 a second here): --quick
  // runs one round of one restore per connection.
  const restoresPerConnection = options.quick ? 1 : 2;
  const memoryRounds = options.quick ? 1 : options.rounds;
  const large = [
    httpSide(ctx, 'server', ctx.server, {
      connections: LARGE_RESTORES,
      amount: LARGE_RESTORES * restoresPerConnection,
      method: 'GET',
      path: { fixed: `/v1/jobs/${objects.tenMiB.jobId}?include_request=true` },
      headers: auth,
    }),
    httpSide(ctx, 'reference', ctx.reference, {
      connections: LARGE_RESTORES,
      amount: LARGE_RESTORES * restoresPerConnection,
      method: 'GET',
      path: { fixed: '/objects/10mib' },
      headers: {},
    }),
  ];
  const memory = await alternate('retrieve 50 x 10 MiB', large, memoryRounds, {
    postmasterPid: postgresPid,
    log: ctx.log,
  });
  const peak = (side: string) =>
    Math.max(...runsOf(memory, side).map((r) => r.usage?.peakRssBytes ?? Number.NaN));
  const before = (side: string) =>
    median(runsOf(memory, side).map((r) => r.usage?.rssBeforeBytes ?? Number.NaN));
  const perRun = runsOf(memory, 'server').every((r) => r.usage?.peakRssIsPerRun);
  markdown.push(
    '',
    `### 2c. Peak RSS with ${LARGE_RESTORES} concurrent restores of a 10 MiB data URL`,
    '',
    `${LARGE_RESTORES} connections, ${LARGE_RESTORES * restoresPerConnection} requests per run (every connection has ` +
      `a restore in flight at once${restoresPerConnection > 1 ? `, ${restoresPerConnection} times` : ''}), ` +
      `${memoryRounds} round${memoryRounds > 1 ? 's' : ''}. The peak is VmHWM of the process, ` +
      (perRun
        ? 'reset before each run (clear_refs)'
        : 'since the process started (clear_refs not allowed here)') +
      '.',
    '',
    comparisonTables(memory, 'req/s'),
    '',
    `Server peak RSS: **${fmt.mib(peak('server'))}** (RSS before the runs ${fmt.mib(before('server'))}); ` +
      `reference peak RSS: ${fmt.mib(peak('reference'))} (before ${fmt.mib(before('reference'))}). ` +
      `A 10 MiB object is ${fmt.mib((objects.tenMiB.bytes * 4) / 3)} as base64; ${LARGE_RESTORES} answers in flight ` +
      `hold at least ${fmt.mib(((objects.tenMiB.bytes * 4) / 3) * LARGE_RESTORES)} of response text between them.`,
  );

  return {
    title: '2. GET /v1/jobs/{id}',
    markdown: markdown.join('\n'),
    verdicts: [
      verdictFor(lightweight, 'GET /v1/jobs/{id} lightweight', 'server', 'reference', 'req/s', undefined),
      verdictFor(restore, 'GET /v1/jobs/{id}?include_request=true (1 MiB)', 'server', 'reference', 'req/s', {
        atLeast: 0.8,
      }),
      {
        what: `peak RSS, ${LARGE_RESTORES} concurrent 10 MiB restores`,
        figure: fmt.mib(peak('server')),
        reference: `reference: ${fmt.mib(peak('reference'))}`,
        ratio: fmt.ratio(peak('server') / peak('reference')),
        target: 'reported',
        met: undefined,
      },
    ],
  };
}
