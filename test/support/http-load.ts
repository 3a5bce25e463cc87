import { setTimeout as sleep } from 'node:timers/promises';

/** Longer than any bound the server has in these tests: an answer later than this is a hang. */
const HANG_MS = 15_000;

/** One request and what became of it; times are performance.now() of the test process. */
export interface Outcome {
  kind: 'create' | 'status' | 'cancel' | 'readyz';
  /** The create's tag (metadata.seq), to find it in the database. */
  seq?: number;
  sentAt: number;
  answeredAt: number;
  /** The HTTP status; 0 when no answer came (connection refused, reset, or HANG_MS passed). */
  status: number;
  body: unknown;
}

export const latency = (o: Outcome) => o.answeredAt - o.sentAt;

/** A 503 in the error shape, as every database failure must answer. */
export function isServiceUnavailable(o: Outcome): boolean {
  const detail = (o.body as { detail?: { code?: unknown; message?: unknown } } | null)?.detail;
  return o.status === 503 && detail?.code === 'service_unavailable' && typeof detail.message === 'string';
}

export async function send(
  kind: Outcome['kind'],
  url: string,
  init: RequestInit = {},
  seq?: number,
): Promise<Outcome> {
  const sentAt = performance.now();
  let status = 0;
  let body: unknown = null;
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(HANG_MS) });
    status = res.status;
    const text = await res.text();
    body = text ? JSON.parse(text) : null;
  } catch (error) {
    body = { error: String(error) };
  }
  return { kind, seq, sentAt, answeredAt: performance.now(), status, body };
}

export interface JobsClient {
  create(seq: number): Promise<Outcome>;
  status(jobId: string, query?: string): Promise<Outcome>;
  readyz(): Promise<Outcome>;
}

/** Creates tagged `{ trial, seq }` in metadata, and status reads, with one client key. */
export function jobsClient(baseUrl: string, key: string, trial: string): JobsClient {
  return {
    create: (seq) =>
      send(
        'create',
        `${baseUrl}/v1/jobs`,
        {
          method: 'POST',
          headers: { 'api-key': key, 'content-type': 'application/json' },
          body: JSON.stringify({
            endpoint: '/v1/documents/extract',
            request: { document: { filename: 'a.txt', url: 'data:text/plain;base64,aGVsbG8=' } },
            metadata: { trial, seq: String(seq) },
          }),
        },
        seq,
      ),
    status: (jobId, query = '') =>
      send('status', `${baseUrl}/v1/jobs/${jobId}/status${query}`, { headers: { 'api-key': key } }),
    readyz: () => send('readyz', `${baseUrl}/readyz`),
  };
}

export interface Load {
  outcomes: Outcome[];
  /** Resolves once `done(outcomes)` holds; rejects after `timeoutMs`. */
  until(done: (outcomes: Outcome[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Stops the clients and waits for their last requests. */
  stop(): Promise<Outcome[]>;
}

export interface LoadOptions {
  clients: number;
  /** The job a client reads until it has created one. */
  seedJobId: string;
  /** Why waiting makes no sense any more (the server exited), or undefined. */
  hopeless?: () => string | undefined;
}

/**
 * `clients` loops, each sending a create, then a status read of the last job it created (or of
 * `seedJobId`), again and again, until stop().
 */
export function startLoad(client: JobsClient, options: LoadOptions): Load {
  const outcomes: Outcome[] = [];
  let stopped = false;
  let nextSeq = 0;
  const loop = async () => {
    let jobId = options.seedJobId;
    while (!stopped) {
      const created = await client.create(nextSeq++);
      outcomes.push(created);
      if (created.status === 201) jobId = (created.body as { id: string }).id;
      if (stopped) break;
      outcomes.push(await client.status(jobId));
      // Failures answer at once: a short pause keeps the loop from spinning the CPU.
      if (created.status !== 201) await sleep(10);
    }
  };
  const loops = Array.from({ length: options.clients }, loop);
  return {
    outcomes,
    async until(done, timeoutMs = 20_000) {
      const deadline = performance.now() + timeoutMs;
      while (!done(outcomes)) {
        const hopeless = options.hopeless?.();
        if (hopeless) throw new Error(`load: ${hopeless}`);
        if (performance.now() > deadline) throw new Error(`load: condition not met within ${timeoutMs} ms`);
        await sleep(20);
      }
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return outcomes;
    },
  };
}
