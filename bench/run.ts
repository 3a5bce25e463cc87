/**
 * `npm run bench [-- options]`: builds the server for production, starts a throwaway PostgreSQL
 * (or uses DATABASE_URL), loads data, starts the server and the reference servers, drives load
 * from a separate process, and writes a Markdown report to bench/results/. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { createDatabase } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { findFreePort } from '../src/postgres-cluster/ports.js';
import { cleanupAll, installSignalHandlers, runToEnd } from './lib/children.js';
import type { BenchContext, StoredObject } from './lib/context.js';
import { summariseCpuProfile } from './lib/cpu-profile.js';
import { analyze, bulkInsertJobs, createTenant } from './lib/fixtures.js';
import { type BenchOptions, parseOptions, type Scenario } from './lib/options.js';
import { createRunDirectory, openBenchDatabase } from './lib/postgres.js';
import { REPO_ROOT, type RunContext, startDriver, startReference, startServer } from './lib/processes.js';
import { type Section, verdictTable } from './lib/report.js';
import { createScenario, dataUrl } from './scenarios/create.js';
import { retrieveScenario } from './scenarios/retrieve.js';
import { statusScenario } from './scenarios/status.js';
import { waitScenario } from './scenarios/wait.js';
import { workersScenario } from './scenarios/workers.js';

const SCENARIO_RUNNERS: Record<Scenario, (ctx: BenchContext) => Promise<Section>> = {
  status: statusScenario,
  retrieve: retrieveScenario,
  create: createScenario,
  workers: workersScenario,
  wait: waitScenario,
};

const benchStarted = performance.now();
function log(message: string) {
  const t = ((performance.now() - benchStarted) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${t}s] ${message}\n`);
}

function shell(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

async function machineDescription(database: BenchContext['database']): Promise<string[]> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const meminfo = await readFile('/proc/meminfo', 'utf8').catch(() => '');
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0);
  const autocannon = JSON.parse(
    await readFile(path.join(REPO_ROOT, 'node_modules/autocannon/package.json'), 'utf8'),
  );
  const commit = shell('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty =
    shell('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--', 'src', 'migrations', 'sdk/src']) !== '';
  return [
    `- CPU: ${os.availableParallelism()} × ${model} (nproc ${shell('nproc', [])})`,
    `- Memory: ${(memKb / 1048576).toFixed(1)} GiB; kernel ${os.release()}`,
    `- Node ${process.version}; ${database.description}`,
    `- PostgreSQL settings: ${Object.entries(database.settings)
      .filter(([k]) => k !== 'server_version')
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
    `- Load driver: autocannon ${autocannon.version} in its own Node process on loopback`,
    `- Code: commit ${commit || 'unknown'}${dirty ? ' with uncommitted changes in src/, migrations/ or sdk/src' : ''}`,
  ];
}

/** The two jobs whose requests hold large data URLs, created through the API so they are offloaded for real. */
async function createPayloadJobs(ctx: Pick<BenchContext, 'server' | 'tenants' | 'db'>) {
  const create = async (bytes: number): Promise<StoredObject> => {
    const res = await fetch(`${ctx.server.baseUrl}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'api-key': ctx.tenants.reads.key },
      body: JSON.stringify({
        endpoint: '/v1/documents/extract',
        request: { document: { filename: 'scan.pdf', url: dataUrl(bytes) } },
      }),
    });
    if (res.status !== 201)
      throw new Error(`creating the ${bytes}-byte job answered ${res.status}: ${await res.text()}`);
    const job = (await res.json()) as { id: string };
    const artifact = await ctx.db
      .selectFrom('job_artifacts')
      .select(['storage_uri', 'byte_size'])
      .where('job_id', '=', job.id)
      .executeTakeFirstOrThrow();
    return { jobId: job.id, file: new URL(artifact.storage_uri).pathname, bytes: Number(artifact.byte_size) };
  };
  return { oneMiB: await create(1024 * 1024), tenMiB: await create(10 * 1024 * 1024) };
}

function describeOptions(o: BenchOptions): string {
  return (
    `${o.quick ? '--quick: ' : ''}${o.rounds} rounds, ${o.durationSeconds} s per run (after ${o.warmupSeconds} s of ` +
    `unmeasured warm-up per side), ${o.rows.toLocaleString('en-US')} loaded jobs, ${o.workerJobs.toLocaleString('en-US')} ` +
    `jobs per drain, ${o.connections} connections for reads, pool ${o.poolSize}, ${o.waiters} waiters.`
  );
}

async function main() {
  const options = parseOptions(process.argv.slice(2));
  if (!options) return;
  installSignalHandlers();
  const runDir = await createRunDirectory();
  const run: RunContext = { runDir, log };
  log(`run folder ${runDir}`);
  const loadStartedAt = os.loadavg();

  if (!options.skipBuild) log('npm run build (alongside the database setup)');
  const build = options.skipBuild
    ? Promise.resolve()
    : runToEnd('npm', ['run', 'build'], { cwd: REPO_ROOT, timeoutMs: 300_000 }).then(() => log('build done'));
  build.catch(() => {});

  const database = await openBenchDatabase(runDir, log);
  const db = createDatabase({ connectionString: database.url, poolSize: 4, applicationName: 'jobs-bench' });
  await migrateToLatest(db);
  const tenants = {
    reads: await createTenant(db, 'bench reads', 'client'),
    writes: await createTenant(db, 'bench writes', 'client'),
    drain: await createTenant(db, 'bench drain', 'worker'),
    wait: await createTenant(db, 'bench wait', 'client'),
  };
  const readPrefix = 'r';
  let t = performance.now();
  await bulkInsertJobs(db, {
    organizationId: tenants.reads.organizationId,
    count: options.rows,
    idPrefix: readPrefix,
    status: 'completed',
  });
  await analyze(db);
  await sql`checkpoint`.execute(db);
  log(
    `loaded ${options.rows.toLocaleString('en-US')} jobs in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  const admin = new pg.Client({ connectionString: database.adminUrl });
  await admin.connect();

  await build;
  const storeDir = path.join(runDir, 'store');
  const referenceStoreDir = path.join(runDir, 'reference-store');
  const profileDir = path.join(runDir, 'profile');
  const server = await startServer(run, {
    databaseUrl: database.url,
    port: await findFreePort(),
    poolSize: options.poolSize,
    storeDir,
    cpuProfDir: options.profile ? profileDir : undefined,
  });
  log(`server listening on ${server.baseUrl} (pid ${server.pid})`);
  const objects = await createPayloadJobs({ server, tenants, db });
  const reference = await startReference(
    run,
    {
      DATABASE_URL: database.url,
      POOL_SIZE: String(options.poolSize),
      READ_ORG_ID: tenants.reads.organizationId,
      WRITE_ORG_ID: tenants.writes.organizationId,
      STORE_DIR: referenceStoreDir,
      OBJECTS: JSON.stringify({
        '1mib': { file: objects.oneMiB.file, contentType: 'application/pdf', filename: 'scan.pdf' },
        '10mib': { file: objects.tenMiB.file, contentType: 'application/pdf', filename: 'scan.pdf' },
      }),
    },
    await findFreePort(),
    options.profile ? path.join(profileDir, 'reference') : undefined,
  );
  const driver = await startDriver(run);
  log(`reference on ${reference.baseUrl}, load driver pid ${driver.pid}`);

  const ctx: BenchContext = {
    options,
    run,
    database,
    db,
    admin,
    driver,
    server,
    reference,
    storeDir,
    referenceStoreDir,
    tenants,
    objects,
    readPrefix,
    log,
  };
  const sections: Section[] = [];
  for (const scenario of options.scenarios) {
    t = performance.now();
    log(`scenario ${scenario}`);
    try {
      sections.push(await SCENARIO_RUNNERS[scenario](ctx));
    } catch (error) {
      log(`scenario ${scenario} failed: ${error instanceof Error ? error.stack : String(error)}`);
      sections.push({
        title: `${scenario}: FAILED`,
        markdown: `The scenario failed: \`${error instanceof Error ? error.message : String(error)}\``,
        verdicts: [],
      });
    }
    log(`scenario ${scenario} took ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }

  let profileText = '';
  if (options.profile) {
    // The driver's idle keep-alive sockets would hold up the server's graceful close.
    await driver.stop();
    await server.stop();
    await reference.stop();
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    for (const [name, dir] of [
      ['server', profileDir],
      ['reference', path.join(profileDir, 'reference')],
    ]) {
      const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile'));
      if (!files[0]) continue;
      const target = path.join(REPO_ROOT, 'bench/results', `${name}-${stamp}.cpuprofile`);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, await readFile(path.join(dir, files[0])));
      profileText += `### ${name}\n\n${await summariseCpuProfile(path.relative(REPO_ROOT, target))}\n\n`;
    }
  }

  const seconds = (performance.now() - benchStarted) / 1000;
  const stamp = new Date().toISOString().slice(0, 16).replace(':', '');
  const out =
    options.out ?? path.join(REPO_ROOT, 'bench/results', `${stamp}${options.quick ? '-quick' : ''}.md`);
  const report = [
    `# Benchmark report ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC${options.quick ? ' (quick)' : ''}`,
    '',
    `Command: \`npm run bench -- ${process.argv.slice(2).join(' ')}\` — ${describeOptions(options)} Total time ${seconds.toFixed(0)} s.`,
    '',
    ...(await machineDescription(database)),
    `- Load average at start ${loadStartedAt.map((l) => l.toFixed(2)).join(' ')}, at end ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (other work on the machine shows here)`,
    '',
    'Server: `node dist/src/server.js` (built by `npm run build`), LOG_REQUESTS=false, LOG_LEVEL=warn, file store in ' +
      `a temporary folder, DATABASE_POOL_SIZE=${options.poolSize}. Every comparison alternates its sides run by ` +
      'run (A B A B …); ratios are taken within each round, and the headline ratio is their median.',
    '',
    '## Summary',
    '',
    verdictTable(sections.flatMap((s) => s.verdicts)),
    '',
    ...sections.flatMap((s) => [`## ${s.title}`, '', s.markdown, '']),
    ...(profileText ? ['## CPU profiles (whole run)', '', profileText] : []),
  ].join('\n');
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, report);
  log(`report written to ${path.relative(process.cwd(), out)}`);

  await admin.end();
  await db.destroy();
  if (options.keepLogs) {
    const logs = path.join(REPO_ROOT, 'bench/results', `logs-${stamp}`);
    await mkdir(logs, { recursive: true });
    for (const name of await readdir(runDir)) {
      if (name.endsWith('.log'))
        await writeFile(path.join(logs, name), await readFile(path.join(runDir, name)));
    }
    log(`logs copied to ${path.relative(process.cwd(), logs)}`);
  }
}

main()
  .catch((error) => {
    log(`failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanupAll();
    log('everything the benchmark started is stopped');
  });
