/**
 * Submits a file to /v1/documents/parse and prints the result once a worker has run it.
 *
 *   JOBS_CLIENT_KEY=<client key> JOBS_BASE_URL=http://localhost:8080 npx tsx examples/submit-and-wait.ts notes.md
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { JobsClient, WaitTimeoutError } from '../sdk/src/index.js';

const MIME_TYPES: Record<string, string> = {
  '.txt': 'text/plain',
  '.md': 'text/markdown',
  '.csv': 'text/csv',
  '.json': 'application/json',
};

async function main() {
  const [file] = process.argv.slice(2);
  const apiKey = process.env.JOBS_CLIENT_KEY;
  if (!file || !apiKey) {
    console.error('Usage: JOBS_CLIENT_KEY=<client key> tsx examples/submit-and-wait.ts <file>');
    process.exit(2);
  }
  const client = new JobsClient({ apiKey, baseUrl: process.env.JOBS_BASE_URL ?? 'http://localhost:8080' });
  const mimeType = MIME_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
  const bytes = await readFile(file);

  const created = await client.jobs.create({
    endpoint: '/v1/documents/parse',
    request: {
      document: { filename: path.basename(file), url: `data:${mimeType};base64,${bytes.toString('base64')}` },
    },
    metadata: { source: 'submit-and-wait' },
  });
  console.error(`created ${created.id}; waiting for a worker…`);

  try {
    const job = await client.jobs.waitForCompletion(created.id, {
      timeoutSeconds: Number(process.env.JOBS_WAIT_SECONDS ?? 300),
      onStatus: (status) => console.error(`status: ${status.status}`),
    });
    if (job.status === 'completed') {
      console.log(JSON.stringify(job.response?.body, null, 2));
      return;
    }
    console.error(`job ${job.status}: ${job.error ? `${job.error.code}: ${job.error.message}` : 'no error'}`);
    process.exitCode = 1;
  } catch (error) {
    if (error instanceof WaitTimeoutError) {
      console.error(`${error.message} Run a worker (npm run worker:example) and try again.`);
      process.exitCode = 1;
      return;
    }
    throw error;
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
