/**
 * An example worker: runs /v1/documents/parse jobs with parseDocument.
 *
 *   JOBS_API_KEY=<worker key> JOBS_BASE_URL=http://localhost:8080 npx tsx examples/parse-worker.ts
 *
 * Logs one line per job; SIGTERM or SIGINT stops it gracefully (a second one releases running jobs).
 */
import { pathToFileURL } from 'node:url';
import { createConsoleLogger, createWorker, type JobHandler, type WorkerOptions } from '../sdk/src/index.js';
import { parseDocument } from './parse-document.js';

export const parseHandler: JobHandler = (job) => ({ status_code: 200, body: parseDocument(job.request) });

export function createParseWorker(options: Omit<WorkerOptions, 'endpoints'>) {
  return createWorker({
    logger: createConsoleLogger({ level: 'info' }),
    ...options,
    endpoints: { '/v1/documents/parse': parseHandler },
  });
}

async function main() {
  const apiKey = process.env.JOBS_API_KEY;
  if (!apiKey) {
    console.error('Set JOBS_API_KEY to an API key with the worker scope.');
    process.exit(2);
  }
  const worker = createParseWorker({
    apiKey,
    baseUrl: process.env.JOBS_BASE_URL ?? 'http://localhost:8080',
    concurrency: Number(process.env.JOBS_CONCURRENCY ?? 4),
  });
  await worker.start();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
