import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { BackoffPolicy } from './backoff.js';
import type { FetchLike } from './http-client.js';
import type { JobHandler } from './job-handler.js';
import { createConsoleLogger, type WorkerLogger } from './logger.js';

export interface WorkerOptions {
  /** An API key with the worker scope. */
  apiKey: string;
  baseUrl: string;
  /** Recorded on each job and attempt (default host:pid:random). */
  workerId?: string;
  /** One handler per endpoint ('/v1' prefix optional); only these endpoints are claimed. */
  endpoints: Record<string, JobHandler>;
  /** Jobs run at once (default 4). */
  concurrency?: number;
  /** Most jobs claimed per request, 1..100 (default: concurrency, at most 100); never more than the free slots. */
  batchSize?: number;
  /**
   * Most reports (results, failures, heartbeats, releases) sent together in one request, 1..100
   * (default 100).
   */
  reportBatchSize?: number;
  /**
   * How long a report waits for others to join its request, in ms (default 5). A batch goes out
   * sooner once reportBatchSize reports are pending, or once every job the worker holds has a
   * report pending or in flight (no other report could join). A stopping worker does not wait.
   */
  reportFlushMs?: number;
  /** Lease asked for on claim and renewed by every heartbeat (default 60). */
  leaseSeconds?: number;
  /** Time between heartbeats of a running job (default leaseSeconds / 3). */
  heartbeatIntervalSeconds?: number;
  /** How long a claim waits on the server for a job when none is queued, 0..30 (default 20). */
  waitSeconds?: number;
  /** On stop, how long running handlers may still take before their jobs are released (default 30). */
  shutdownGraceSeconds?: number;
  /** Stop gracefully on SIGTERM and SIGINT; a second signal releases running jobs at once (default true). */
  handleSignals?: boolean;
  /** Pause after a failed claim, doubled on each failure in a row up to maxSeconds (default 1 .. 30). */
  retryBackoff?: { initialSeconds?: number; maxSeconds?: number };
  /** Default: warnings and errors on stderr. */
  logger?: WorkerLogger;
  /** Limit for one HTTP request, in ms (default 30 000); claims get their wait on top. */
  timeoutMs?: number;
  fetch?: FetchLike;
}

/** WorkerOptions with every default applied and every limit enforced. */
export interface WorkerSettings {
  workerId: string;
  /** Keyed by the endpoint as the server stores it. */
  handlers: ReadonlyMap<string, JobHandler>;
  concurrency: number;
  batchSize: number;
  reportBatchSize: number;
  reportFlushMs: number;
  leaseSeconds: number;
  heartbeatMs: number;
  waitSeconds: number;
  shutdownGraceSeconds: number;
  claimBackoff: BackoffPolicy;
  logger: WorkerLogger;
  /** The process signals that stop the worker; none when handleSignals is false. */
  signals: readonly NodeJS.Signals[];
}

/** The stored form of an endpoint, as the server normalises it. */
function normaliseEndpoint(endpoint: string): string {
  if (endpoint.startsWith('/v1/')) return endpoint;
  return `/v1${endpoint.startsWith('/') ? '' : '/'}${endpoint}`;
}

/** An integer option of at least 1; above `max` it is `max`, as it always was for batchSize. */
function limited(value: number, name: string, max: number): number {
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`${name} must be an integer >= 1.`);
  return Math.min(value, max);
}

/** Throws a TypeError for options the worker cannot run with. */
export function resolveWorkerOptions(options: WorkerOptions): WorkerSettings {
  const handlers = new Map<string, JobHandler>();
  for (const [endpoint, handler] of Object.entries(options.endpoints)) {
    handlers.set(normaliseEndpoint(endpoint), handler);
  }
  if (handlers.size === 0) throw new TypeError('endpoints must name at least one handler.');
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new TypeError('concurrency must be an integer >= 1.');
  // The server takes at most 100 jobs per claim and 100 reports per request.
  const batchSize = limited(options.batchSize ?? Math.min(concurrency, 100), 'batchSize', 100);
  const reportBatchSize = limited(options.reportBatchSize ?? 100, 'reportBatchSize', 100);
  const reportFlushMs = options.reportFlushMs ?? 5;
  if (!Number.isFinite(reportFlushMs) || reportFlushMs < 0)
    throw new TypeError('reportFlushMs must be a number >= 0.');
  const leaseSeconds = options.leaseSeconds ?? 60;
  return {
    workerId: options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    handlers,
    concurrency,
    batchSize,
    reportBatchSize,
    reportFlushMs,
    leaseSeconds,
    heartbeatMs: (options.heartbeatIntervalSeconds ?? leaseSeconds / 3) * 1000,
    waitSeconds: Math.min(Math.max(Math.floor(options.waitSeconds ?? 20), 0), 30),
    shutdownGraceSeconds: options.shutdownGraceSeconds ?? 30,
    claimBackoff: {
      initialMs: (options.retryBackoff?.initialSeconds ?? 1) * 1000,
      maxMs: (options.retryBackoff?.maxSeconds ?? 30) * 1000,
    },
    logger: options.logger ?? createConsoleLogger({ level: 'warn' }),
    signals: options.handleSignals === false ? [] : ['SIGTERM', 'SIGINT'],
  };
}
