/**
 * One SDK worker in a process of its own, for the multi-process drain test: answers 'ready' over
 * IPC, starts on 'go', stops gracefully on SIGTERM (the worker's own signal handling), then
 * answers the ids of the jobs its handler ran and the requests it sent, and exits.
 *
 * Usage (forked by the test): node --import tsx test/support/sdk-drain-worker.ts
 * with JOBS_BASE_URL, JOBS_API_KEY and JOBS_CONCURRENCY in the environment.
 */
import { createWorker, type FetchLike } from '../../sdk/src/index.js';

export interface DrainWorkerResult {
  handled: string[];
  requests: { claim: number; reports: number; single: number };
}

const handled: string[] = [];
const requests = { claim: 0, reports: 0, single: 0 };
const countingFetch: FetchLike = (url, init) => {
  const { pathname } = new URL(url);
  if (pathname === '/v1/worker/claim') requests.claim++;
  else if (pathname === '/v1/worker/reports') requests.reports++;
  else requests.single++;
  return fetch(url, init);
};

const worker = createWorker({
  apiKey: process.env.JOBS_API_KEY as string,
  baseUrl: process.env.JOBS_BASE_URL as string,
  concurrency: Number(process.env.JOBS_CONCURRENCY ?? 100),
  leaseSeconds: Number(process.env.JOBS_LEASE_SECONDS ?? 60),
  waitSeconds: 1,
  fetch: countingFetch,
  endpoints: {
    '/v1/documents/extract': (job) => {
      handled.push(job.id);
      return { pages: 1 };
    },
  },
  logger: {
    info() {},
    warn(fields, message) {
      process.stderr.write(`warn: ${message} ${JSON.stringify(fields)}\n`);
    },
    error(fields, message) {
      process.stderr.write(`error: ${message} ${JSON.stringify(fields)}\n`);
    },
  },
});

process.once('message', () => {
  void worker.start().then(() => {
    process.send?.({ handled, requests } satisfies DrainWorkerResult, () => process.exit(0));
  });
});
process.send?.('ready');
