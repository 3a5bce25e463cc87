import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from '../../examples/parse-document.js';
import { JobsClient, NonRetryableError } from '../../sdk/src/index.js';
import {
  createSdkTenant,
  parseRequest,
  type SdkServer,
  startSdkServer,
  stopSdkServer,
  textDataUrl,
  until,
} from './sdk-helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let server: SdkServer;
beforeAll(async () => {
  server = await startSdkServer();
});
afterAll(() => stopSdkServer(server));

describe('parseDocument (examples/parse-document.ts)', () => {
  it('decodes a text/plain data URL and counts its words and lines', () => {
    const text = 'Hello world.\nSecond  line here\n\nlast';
    expect(parseDocument(parseRequest(text, 'hello.txt'))).toEqual({
      filename: 'hello.txt',
      text,
      word_count: 6,
      line_count: 4,
    });
    expect(parseDocument(parseRequest('one line\n')).line_count).toBe(1);
    expect(parseDocument(parseRequest('')).line_count).toBe(0);
  });

  it('reads percent-encoded data URLs and the other text types', () => {
    const request = {
      document: { filename: 'a.md', url: 'data:text/markdown;charset=utf-8,%23%20Title%0Abody' },
    };
    expect(parseDocument(request)).toMatchObject({ text: '# Title\nbody', word_count: 3, line_count: 2 });
    const json = { document: { filename: 'a.json', url: textDataUrl('{"a": 1}', 'application/json') } };
    expect(parseDocument(json).text).toBe('{"a": 1}');
  });

  it('fails non-retryably on an unsupported type, invalid JSON or a URL that is not a data URL', () => {
    const png = { document: { filename: 'a.png', url: 'data:image/png;base64,iVBORw0KGgo=' } };
    const error = (() => {
      try {
        parseDocument(png);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(NonRetryableError);
    expect(error).toMatchObject({ code: 'unsupported_document_type', retryable: false });

    const badJson = { document: { filename: 'a.json', url: textDataUrl('{nope', 'application/json') } };
    expect(() => parseDocument(badJson)).toThrow(expect.objectContaining({ code: 'invalid_document' }));
    const remote = { document: { filename: 'a.txt', url: 'https://example.com/a.txt' } };
    expect(() => parseDocument(remote)).toThrow(
      expect.objectContaining({ code: 'unsupported_document_url' }),
    );
  });
});

describe('examples/parse-worker.ts', () => {
  it('runs parse jobs from the environment, logs one line per job and exits cleanly on SIGTERM', async () => {
    const tenant = await createSdkTenant(server.ctx);
    const client = new JobsClient({ apiKey: tenant.clientKey, baseUrl: server.baseUrl });
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/parse-worker.ts'], {
      cwd: root,
      env: { ...process.env, JOBS_API_KEY: tenant.workerKey, JOBS_BASE_URL: server.baseUrl },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = once(child, 'exit');
    try {
      const text = await client.jobs.create({
        endpoint: '/v1/documents/parse',
        request: parseRequest('three small words', 'words.txt'),
      });
      const image = await client.jobs.create({
        endpoint: '/v1/documents/parse',
        request: { document: { filename: 'a.png', url: 'data:image/png;base64,iVBORw0KGgo=' } },
      });

      const parsed = await client.jobs.waitForCompletion(text.id, { timeoutSeconds: 15 });
      expect(parsed.response).toEqual({
        status_code: 200,
        body: { filename: 'words.txt', text: 'three small words', word_count: 3, line_count: 1 },
      });
      const refused = await client.jobs.waitForCompletion(image.id, { timeoutSeconds: 15 });
      expect(refused).toMatchObject({
        status: 'failed',
        attempt_count: 1,
        error: { code: 'unsupported_document_type' },
      });

      // examples/submit-and-wait.ts against the same worker: prints the parsed body as JSON.
      const dir = await mkdtemp(path.join(os.tmpdir(), 'submit-'));
      try {
        const file = path.join(dir, 'notes.md');
        await writeFile(file, '# Notes\nfour words in here\n');
        const { stdout } = await promisify(execFile)(
          process.execPath,
          ['--import', 'tsx', 'examples/submit-and-wait.ts', file],
          {
            cwd: root,
            env: { ...process.env, JOBS_CLIENT_KEY: tenant.clientKey, JOBS_BASE_URL: server.baseUrl },
          },
        );
        expect(JSON.parse(stdout)).toEqual({
          filename: 'notes.md',
          text: '# Notes\nfour words in here\n',
          word_count: 6,
          line_count: 2,
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }

      await until(() => stderr.includes(image.id));
      const jobLines = stderr.split('\n').filter((line) => line.includes('job finished'));
      expect(jobLines).toHaveLength(3);
      expect(jobLines.find((line) => line.includes(text.id))).toContain('outcome=completed');
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = await exited;
    expect(code).toBe(0);
    expect(stderr).toContain('worker stopped');
  });
});
