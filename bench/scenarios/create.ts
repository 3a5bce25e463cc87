import { rm } from 'node:fs/promises';
import path from 'node:path';
import { alternate } from '../lib/alternate.js';
import { type BenchContext, httpSide } from '../lib/context.js';
import { comparisonTables, ratioText, type Section, verdictFor } from '../lib/report.js';

const SMALL_CONNECTIONS = 32;
const LARGE_CONNECTIONS = 8;

/** A data URL of `size` pseudo-random bytes (random bytes do not compress away anywhere). */
export function dataUrl(size: number): string {
  const bytes = Buffer.alloc(size);
  let x = 1;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    bytes[i] = x >> 16;
  }
  return `data:application/pdf;base64,${bytes.toString('base64')}`;
}

export async function createScenario(ctx: BenchContext): Promise<Section> {
  const { options, tenants } = ctx;
  const json = { 'content-type': 'application/json' };
  const small = JSON.stringify({
    endpoint: '/v1/documents/extract',
    request: { document: { filename: 'invoice.pdf', url: 'https://files.example/invoice.pdf' } },
    metadata: { customer: 'bench' },
  });
  const large = JSON.stringify({
    endpoint: '/v1/documents/extract',
    request: { document: { filename: 'scan.pdf', url: dataUrl(1024 * 1024) } },
  });
  // The objects of these runs are never read again: removed after each run so that a full run
  // does not fill the disk with gigabytes of 1 MiB files.
  const removeWrites = async () => {
    // Retried: requests the load driver gave up on at the end of the run may still be writing.
    const gone = { recursive: true, force: true, maxRetries: 10, retryDelay: 100 };
    await rm(path.join(ctx.storeDir, tenants.writes.organizationId), gone);
    await rm(ctx.referenceStoreDir, gone);
  };

  const sidesFor = (body: string, connections: number) => [
    httpSide(
      ctx,
      'server',
      ctx.server,
      {
        connections,
        method: 'POST',
        path: { fixed: '/v1/jobs' },
        headers: { ...json, 'api-key': tenants.writes.key },
        body,
      },
      { after: removeWrites },
    ),
    httpSide(
      ctx,
      'reference',
      ctx.reference,
      { connections, method: 'POST', path: { fixed: '/jobs' }, headers: json, body },
      { after: removeWrites },
    ),
  ];

  const smallSides = sidesFor(small, SMALL_CONNECTIONS);
  ctx.log('create: warming up');
  for (const side of smallSides) await side.warmup();
  const smallRuns = await alternate('create small', smallSides, options.rounds, {
    postmasterPid: ctx.database.postmasterPid,
    log: ctx.log,
  });
  const largeSides = sidesFor(large, LARGE_CONNECTIONS);
  if (!options.quick) for (const side of largeSides) await side.warmup();
  const largeRuns = await alternate('create 1 MiB', largeSides, options.rounds, {
    postmasterPid: ctx.database.postmasterPid,
    log: ctx.log,
  });

  const markdown = [
    '### 3a. Small body',
    '',
    `${SMALL_CONNECTIONS} connections, no Idempotency-Key: every request creates a new job. Reference: bare Fastify ` +
      'parsing the same body and running one INSERT of the row (same table, same triggers), no validation, no ' +
      'request hash, no transaction around it.',
    '',
    comparisonTables(smallRuns, 'req/s'),
    '',
    `Server / reference: **${ratioText(smallRuns, 'server', 'reference').text}**.`,
    '',
    '### 3b. Body with a 1 MiB data URL (offloaded to the file store)',
    '',
    `${LARGE_CONNECTIONS} connections. Reference: the same parse, the data URL decoded and written to the file ` +
      "store the way the server's store writes (temporary file, fsync, rename), then one INSERT.",
    '',
    comparisonTables(largeRuns, 'req/s'),
    '',
    `Server / reference: **${ratioText(largeRuns, 'server', 'reference').text}**.`,
  ];
  return {
    title: '3. POST /v1/jobs',
    markdown: markdown.join('\n'),
    verdicts: [
      verdictFor(smallRuns, 'POST /v1/jobs small body', 'server', 'reference', 'req/s', undefined),
      verdictFor(largeRuns, 'POST /v1/jobs with 1 MiB data URL', 'server', 'reference', 'req/s', undefined),
    ],
  };
}
