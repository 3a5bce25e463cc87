/**
 * The load process: everything that acts as a client of the servers under test runs here, apart
 * from the harness, so the harness's own work never competes with a measured request. It takes
 * one command at a time over IPC and answers its result.
 */
import http from 'node:http';
import autocannon from 'autocannon';
import pg from 'pg';
import { createWorker } from '../../sdk/src/index.js';
import { createJsonClient } from './http-json.js';
import {
  type Drain,
  type DrainResult,
  type DriverCommand,
  type DriverReply,
  type HttpLoad,
  type HttpResult,
  summarise,
  type WaitersOpen,
  type WaitersResult,
} from './protocol.js';

function pathMaker(spec: HttpLoad['path']): () => string {
  if ('fixed' in spec) return () => spec.fixed;
  const width = 21 - spec.idPrefix.length;
  const [before, after] = spec.template.split('{id}');
  return () => {
    const i = 1 + Math.floor(Math.random() * spec.count);
    return `${before}job_${spec.idPrefix}${String(i).padStart(width, '0')}${after}`;
  };
}

async function runHttp(load: HttpLoad): Promise<HttpResult> {
  const nextPath = pathMaker(load.path);
  // Our own record of every 2xx latency: autocannon's histogram keeps whole milliseconds only.
  const latencies: number[] = [];
  const instance = autocannon({
    url: load.baseUrl,
    connections: load.connections,
    ...(load.amount ? { amount: load.amount } : { duration: load.durationSeconds ?? 10 }),
    timeout: 60,
    requests: [
      {
        method: load.method,
        headers: load.headers,
        ...(load.body === undefined ? {} : { body: load.body }),
        setupRequest: (request) => ({ ...request, path: nextPath() }),
      },
    ],
  });
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, ms: number) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(ms);
  });
  const result = await instance;
  const ok = result['2xx'];
  return {
    seconds: result.duration,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    rps: ok / result.duration,
    latency: summarise(latencies),
    bytesPerSecond: result.throughput.total / result.duration,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([k, v]) => [k, v.count])),
  };
}

/** The long-polling clients of the wait scenario, between waiters-open and waiters-complete. */
let waiting:
  | {
      open: WaitersOpen;
      listener: pg.Client;
      agent: http.Agent;
      answers: Map<string, { at: number; status: string | undefined; code: number }>;
      notified: Map<string, number>;
      completedAt: number | undefined;
      allAnswered: Promise<void>;
    }
  | undefined;

async function openWaiters(open: WaitersOpen): Promise<{ sent: number }> {
  const url = new URL(open.baseUrl);
  const agent = new http.Agent({ keepAlive: false, maxSockets: open.jobIds.length + 10 });
  // The reference: a bare LISTEN connection that hears the same commits.
  const listener = new pg.Client({ connectionString: open.databaseUrl });
  await listener.connect();
  const notified = new Map<string, number>();
  listener.on('notification', (n) => {
    if (n.payload && !notified.has(n.payload)) notified.set(n.payload, performance.now());
  });
  await listener.query('listen job_changed');
  const answers = new Map<string, { at: number; status: string | undefined; code: number }>();
  let written = 0;
  let resolveWritten: () => void = () => {};
  const allWritten = new Promise<void>((resolve) => {
    resolveWritten = resolve;
  });
  let resolveAnswered: () => void = () => {};
  const allAnswered = new Promise<void>((resolve) => {
    resolveAnswered = resolve;
  });
  const settle = (id: string, entry: { at: number; status: string | undefined; code: number }) => {
    answers.set(id, entry);
    if (answers.size === open.jobIds.length) resolveAnswered();
  };
  for (const id of open.jobIds) {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: `/v1/jobs/${id}/status?wait_seconds=${open.waitSeconds}`,
        agent,
        headers: { 'api-key': open.key },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const at = performance.now();
          let status: string | undefined;
          try {
            status = JSON.parse(Buffer.concat(chunks).toString('utf8')).status;
          } catch {
            status = undefined;
          }
          settle(id, { at, status, code: res.statusCode ?? 0 });
        });
      },
    );
    req.on('error', () => settle(id, { at: performance.now(), status: undefined, code: 0 }));
    req.on('finish', () => {
      written++;
      if (written === open.jobIds.length) resolveWritten();
    });
    req.end();
  }
  await allWritten;
  waiting = { open, listener, agent, answers, notified, completedAt: undefined, allAnswered };
  return { sent: written };
}

async function completeWaiters(timeoutMs: number): Promise<WaitersResult> {
  if (!waiting) throw new Error('waiters-complete without waiters-open');
  const w = waiting;
  waiting = undefined;
  const early = w.answers.size;
  // One statement completes them all: the trigger sends one job_changed per row at commit. On its
  // own connection: on the LISTEN one, the notifications would arrive before the UPDATE's answer.
  const updater = new pg.Client({ connectionString: w.open.databaseUrl });
  await updater.connect();
  const sentAt = performance.now();
  await updater.query(
    `update jobs set status = 'completed', completed_at = now(), updated_at = now(), started_at = now(),
       response = '{"status_code":200,"body":{}}'
     where id = any($1) and status = 'queued'`,
    [w.open.jobIds],
  );
  const completedAt = performance.now();
  await updater.end();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([w.allAnswered, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
  const answerTimes: number[] = [];
  let answered = 0;
  for (const entry of w.answers.values()) {
    if (entry.at >= completedAt || entry.at >= sentAt) {
      answerTimes.push(entry.at - completedAt);
      if (entry.status === 'completed') answered++;
    }
  }
  const notifyTimes = [...w.notified.values()].filter((t) => t >= sentAt).map((t) => t - completedAt);
  await w.listener.end();
  w.agent.destroy();
  return {
    clients: w.open.jobIds.length,
    early,
    answered,
    updateMs: completedAt - sentAt,
    answerLatency: summarise(answerTimes),
    notifyLatency: summarise(notifyTimes),
  };
}

interface Claimed {
  object: 'list';
  data: { job: { id: string }; lease_token: string }[];
}

interface Reported {
  object: 'list';
  data: { job_id: string; status_code: number }[];
}

/**
 * The worker protocol by hand: `concurrency` loops, each claims a batch and completes all of it in
 * one `POST /v1/worker/reports`.
 */
async function drainHttpLoop(d: Drain): Promise<DrainResult> {
  const client = createJsonClient(d.baseUrl, { 'api-key': d.key }, 64);
  let completed = 0;
  let claims = 0;
  const started = performance.now();
  const loop = async (n: number) => {
    for (;;) {
      const claim = await client.request<Claimed>('POST', '/v1/worker/claim', {
        worker_id: `bench-loop-${n}`,
        limit: d.batchSize,
        wait_seconds: 0,
        ...(d.organizationIds ? { organization_ids: d.organizationIds } : {}),
      });
      claims++;
      if (claim.status !== 200) throw new Error(`claim answered ${claim.status}`);
      if (claim.body.data.length === 0) return;
      const res = await client.request<Reported>('POST', '/v1/worker/reports', {
        reports: claim.body.data.map((c) => ({
          type: 'complete',
          job_id: c.job.id,
          lease_token: c.lease_token,
          response: { status_code: 200, body: {} },
        })),
      });
      if (res.status !== 200) throw new Error(`reports answered ${res.status}`);
      const refused = res.body.data.find((r) => r.status_code !== 200);
      if (refused) throw new Error(`complete of ${refused.job_id} answered ${refused.status_code}`);
      completed += res.body.data.length;
    }
  };
  await Promise.all(Array.from({ length: d.concurrency }, (_, n) => loop(n)));
  const seconds = (performance.now() - started) / 1000;
  client.close();
  if (completed !== d.jobs) throw new Error(`drained ${completed} jobs, expected ${d.jobs}`);
  return { jobs: completed, seconds, jobsPerSecond: completed / seconds, claims };
}

/** The SDK's createWorker with a no-op handler; done when it has reported every job. */
async function drainSdk(d: Drain): Promise<DrainResult> {
  let completed = 0;
  let failures = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const worker = createWorker({
    apiKey: d.key,
    baseUrl: d.baseUrl,
    endpoints: { '/v1/documents/extract': () => ({}) },
    concurrency: d.concurrency,
    batchSize: d.batchSize,
    waitSeconds: 1,
    handleSignals: false,
    logger: {
      info(fields, message) {
        if (message === 'job finished') {
          if (fields.outcome === 'completed') completed++;
          else failures++;
          if (completed + failures >= d.jobs) done();
        }
      },
      warn() {},
      error(fields, message) {
        process.stderr.write(`sdk worker: ${message} ${JSON.stringify(fields)}\n`);
      },
    },
  });
  const started = performance.now();
  void worker.start();
  await finished;
  const seconds = (performance.now() - started) / 1000;
  await worker.stop({ graceSeconds: 0 });
  if (failures > 0) throw new Error(`${failures} jobs did not complete`);
  return { jobs: completed, seconds, jobsPerSecond: completed / seconds, claims: Number.NaN };
}

async function handle(command: DriverCommand): Promise<unknown> {
  switch (command.kind) {
    case 'http':
      return runHttp(command);
    case 'waiters-open':
      return openWaiters(command);
    case 'waiters-complete':
      return completeWaiters(command.timeoutMs);
    case 'drain':
      return command.variant === 'sdk' ? drainSdk(command) : drainHttpLoop(command);
  }
}

process.on('message', (message: { id: number; command: DriverCommand }) => {
  handle(message.command).then(
    (result) => process.send?.({ id: message.id, ok: true, result } satisfies DriverReply),
    (error: unknown) =>
      process.send?.({
        id: message.id,
        ok: false,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      } satisfies DriverReply),
  );
});
// The harness went away (even killed): nothing to drive any more.
process.on('disconnect', () => process.exit(0));
process.send?.({ id: 0, ok: true, result: 'ready' } satisfies DriverReply);
