import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { seedJob } from '../support/job-factory.js';
import { createTenant, useTestApp } from '../support/test-app.js';

// A request must arrive whole within a second here, so a stalled body is cut quickly.
const ctx = useTestApp({ env: { REQUEST_TIMEOUT_SECONDS: '1' } });
let tenant: Awaited<ReturnType<typeof createTenant>>;
let port: number;

beforeAll(async () => {
  tenant = await createTenant(ctx.db);
  await ctx.app.listen({ port: 0, host: '127.0.0.1' });
  port = (ctx.app.server.address() as AddressInfo).port;
});

/** Sends raw bytes (optionally more later) and reads until the server closes the connection. */
function rawExchange(first: string, options: { thenWaitMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => {
      answer += chunk;
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(answer));
    socket.write(first);
    setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer in time; got: ${answer.slice(0, 200)}`));
    }, options.thenWaitMs ?? 5000);
  });
}

function parseRaw(answer: string) {
  const [head, body] = answer.split('\r\n\r\n');
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => [
      line.slice(0, line.indexOf(':')).toLowerCase(),
      line.slice(line.indexOf(':') + 1).trim(),
    ]),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(body) };
}

const expectErrorShape = (body: unknown, code: string) =>
  expect(body).toEqual({ detail: { code, message: expect.any(String) } });

describe('errors raised before a route is found', () => {
  it('answers a malformed percent-encoding in the path with 400 in the error shape', async () => {
    const res = await ctx.app.inject({ url: '/v1/jobs/%00%ff', headers: { 'x-request-id': 'r-bad-url' } });
    expect(res.statusCode).toBe(400);
    expectErrorShape(res.json(), 'invalid_request');
    expect(res.headers['x-request-id']).toBe('r-bad-url');
  });

  it('answers a path parameter over 100 characters with 414, without echoing the URL', async () => {
    const long = 'x'.repeat(300);
    const res = await ctx.app.inject({ url: `/v1/jobs/${long}`, headers: { 'api-key': tenant.key } });
    expect(res.statusCode).toBe(414);
    expectErrorShape(res.json(), 'uri_too_long');
    expect(res.body).not.toContain(long);
    expect(res.headers['x-request-id']).toBeDefined();
  });

  it('answers a method the router does not know with 404 in the error shape', async () => {
    const res = await ctx.app.inject({ method: 'PROPFIND' as 'GET', url: '/v1/jobs' });
    expect(res.statusCode).toBe(404);
    expectErrorShape(res.json(), 'not_found');
    expect(res.headers['x-request-id']).toBeDefined();
  });
});

describe('errors raised by the HTTP parser', () => {
  it('answers a request line that is not HTTP with 400 in the error shape', async () => {
    const answer = parseRaw(await rawExchange('FOO\x01 / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(answer.status).toBe(400);
    expectErrorShape(answer.body, 'invalid_request');
    expect(answer.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(answer.headers['cache-control']).toBe('no-store');
  });

  it('answers headers larger than the server accepts with 431 in the error shape', async () => {
    const answer = parseRaw(
      await rawExchange(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
    );
    expect(answer.status).toBe(431);
    expectErrorShape(answer.body, 'headers_too_large');
    expect(answer.headers['x-request-id']).toBeDefined();
  });

  it('cuts a request whose body stalls with 408 after REQUEST_TIMEOUT_SECONDS, and stores nothing', async () => {
    const before = await ctx.db.selectFrom('jobs').select('id').execute();
    const started = Date.now();
    const answer = parseRaw(
      await rawExchange(
        `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nApi-Key: ${tenant.key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"endpoint"`,
        { thenWaitMs: 8000 },
      ),
    );
    expect(answer.status).toBe(408);
    expectErrorShape(answer.body, 'request_timeout');
    // One second to arrive, checked every second.
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await ctx.db.selectFrom('jobs').select('id').execute()).toEqual(before);
  });
});

describe('headers of every answer', () => {
  it('forbid caching and content sniffing, on success and on error', async () => {
    const job = await seedJob(ctx, tenant.organizationId);
    for (const [url, key] of [
      [`/v1/jobs/${job.id}`, tenant.key],
      [`/v1/jobs/${job.id}/status`, tenant.key],
      ['/v1/jobs', 'sk_wrong'],
      ['/nope', tenant.key],
    ]) {
      const res = await ctx.app.inject({ url, headers: { 'api-key': key } });
      expect([url, res.headers['cache-control'], res.headers['x-content-type-options']]).toEqual([
        url,
        'no-store',
        'nosniff',
      ]);
    }
  });
});

describe('logs', () => {
  let lines: string[];
  let logged: Awaited<ReturnType<typeof buildApp>>;
  beforeAll(async () => {
    lines = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    logged = await buildApp({
      config: loadConfig({ LOG_LEVEL: 'info' }),
      db: ctx.db,
      store: ctx.store,
      logger: createLogger({ level: 'info', destination: sink }),
      listener: false,
      backgroundTasks: false,
    });
  });
  afterAll(() => logged?.close());

  it.each([
    ['access%5Ftoken', 'the name percent-encoded'],
    ['access_token%00', 'a NUL after the name'],
    ['access_token[]', 'brackets after the name'],
    ['ACCESS_TOKEN', 'the name in capitals'],
  ])('never write a key sent as %s (%s)', async (name) => {
    const job = await seedJob(ctx, tenant.organizationId);
    const before = lines.length;
    await logged.inject({ url: `/v1/jobs/${job.id}?${name}=${tenant.key}` });
    const written = lines.slice(before).join('');
    expect(written).toContain('[REDACTED]');
    expect(written).not.toContain(tenant.key.slice(3));
  });
});
