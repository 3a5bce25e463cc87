/** Messages between the harness and the load driver process (child_process IPC, JSON). */

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  mean: number;
  max: number;
}

/** Path of each request: fixed, or a random job id in [1, count] put in place of `{id}`. */
export type RequestPath = { fixed: string } | { template: string; idPrefix: string; count: number };

export interface HttpLoad {
  kind: 'http';
  baseUrl: string;
  connections: number;
  /** Seconds; or `amount` requests in all. */
  durationSeconds?: number;
  amount?: number;
  method: 'GET' | 'POST';
  path: RequestPath;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpResult {
  seconds: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Successful answers per second. */
  rps: number;
  /** Of successful answers, milliseconds. */
  latency: LatencySummary;
  bytesPerSecond: number;
  statusCodes: Record<string, number>;
}

export interface WaitersOpen {
  kind: 'waiters-open';
  baseUrl: string;
  key: string;
  databaseUrl: string;
  jobIds: string[];
  waitSeconds: number;
}

export interface WaitersComplete {
  kind: 'waiters-complete';
  /** How long to wait for every answer after the completions, ms. */
  timeoutMs: number;
}

export interface WaitersResult {
  clients: number;
  /** Answers that came before the completions (should be 0). */
  early: number;
  /** Answers after the completions, with status completed. */
  answered: number;
  /** The UPDATE that completed every job: from sending it to its commit answer, ms. */
  updateMs: number;
  /** From the UPDATE's answer to each HTTP answer, ms. */
  answerLatency: LatencySummary;
  /** Reference: from the UPDATE's answer to each job_changed notification at a bare LISTEN client, ms. */
  notifyLatency: LatencySummary;
}

export interface Drain {
  kind: 'drain';
  variant: 'http-loop' | 'sdk';
  baseUrl: string;
  key: string;
  jobs: number;
  /** http-loop: concurrent claim loops; sdk: the worker's concurrency. */
  concurrency: number;
  batchSize: number;
  /** http-loop with a fleet key: claim only these organizations' jobs. */
  organizationIds?: string[];
}

export interface DrainResult {
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  claims: number;
}

export type DriverCommand = HttpLoad | WaitersOpen | WaitersComplete | Drain;

export type DriverReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: string };

export function summarise(values: number[]): LatencySummary {
  if (values.length === 0)
    return { count: 0, p50: Number.NaN, p99: Number.NaN, mean: Number.NaN, max: Number.NaN };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    p50: at(0.5),
    p99: at(0.99),
    mean: sum / sorted.length,
    max: sorted[sorted.length - 1],
  };
}
