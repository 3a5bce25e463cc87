import { beforeAll, describe, expect, it } from 'vitest';
import { sweepExpiredJobs } from '../../src/jobs/expiry-sweeper.js';
import { dataUrl } from '../support/job-factory.js';
import { addKey, createTenant, useTestApp } from '../support/test-app.js';

/**
 * A fixed session through every route, written down as the server answered it: status, the
 * headers a client reads, and the body byte for byte (with the random parts — ids, keys, lease
 * tokens, ETags, the store's folder — replaced by placeholders numbered by first appearance).
 * The transcript file is the record: a change that alters any answer, the OpenAPI document
 * included, fails here, and a deliberate API change updates the file in the same commit.
 */

const START = Date.parse('2030-01-01T00:00:00Z');

/** Time moves only when the session says so, so every timestamp in the transcript is fixed. */
function steppedClock() {
  let now = START;
  return {
    now: () => new Date(now),
    at(secondsFromStart: number) {
      now = START + secondsFromStart * 1000;
    },
  };
}

const RECORDED_HEADERS = ['content-type', 'etag', 'idempotent-replayed', 'x-request-id'];

function placeholders(storeBase: string) {
  const seen = new Map<string, string>();
  const counts = new Map<string, number>();
  const name = (kind: string, value: string) => {
    let found = seen.get(value);
    if (!found) {
      const n = (counts.get(kind) ?? 0) + 1;
      counts.set(kind, n);
      found = `<${kind}-${n}>`;
      seen.set(value, found);
    }
    return found;
  };
  const patterns: [string, RegExp][] = [
    ['job', /job_[A-Za-z0-9_-]{21}/g],
    ['org', /org_[A-Za-z0-9_-]{16}/g],
    ['key', /sk_[A-Za-z0-9_-]{32}/g],
    ['uuid', /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g],
    ['etag', /\\?"[A-Za-z0-9_-]{27}\\?"/g],
  ];
  return (text: string) => {
    let out = text.split(storeBase).join('<store>');
    for (const [kind, pattern] of patterns) out = out.replace(pattern, (m) => name(kind, m));
    return out;
  };
}

const clock = steppedClock();
const ctx = useTestApp({
  clock,
  env: { OFFLOAD_THRESHOLD_BYTES: '1024', INLINE_DOCUMENT_LIMIT_BYTES: '8192' },
});
const lines: string[] = [];
let normalise: (text: string) => string;
let client: string;
let worker: string;
let stranger: string;
let requestNumber = 0;

interface Call {
  method: 'GET' | 'POST';
  url: string;
  key?: string | null;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
}

async function call({ method, url, key, body, rawBody, headers }: Call) {
  requestNumber++;
  const res = await ctx.app.inject({
    method,
    url,
    headers: {
      'x-request-id': `req-${requestNumber}`,
      ...(key === null ? {} : { 'api-key': key ?? client }),
      ...(body !== undefined || rawBody !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    payload: rawBody ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const recorded = RECORDED_HEADERS.filter((h) => res.headers[h] !== undefined).map(
    (h) => `${h}: ${res.headers[h]}`,
  );
  lines.push(
    normalise(
      [
        `### ${method} ${url}`,
        `${res.statusCode}`,
        ...recorded,
        res.body === '' ? '(empty)' : res.body,
        '',
      ].join('\n'),
    ),
  );
  return res;
}

beforeAll(async () => {
  normalise = placeholders(ctx.store.baseUri);
  const tenant = await createTenant(ctx.db, 'client');
  client = tenant.key;
  worker = (await addKey(ctx.db, tenant.organizationId, 'worker')).key;
  stranger = (await createTenant(ctx.db, 'client')).key;
  // Placeholders follow first appearance: name the organization and keys before any answer.
  normalise(`${tenant.organizationId} ${client} ${worker} ${stranger}`);
});

describe('the API transcript', () => {
  it('answers a fixed session exactly as recorded', async () => {
    const pdf = dataUrl(4000, 'application/pdf', 7).url;
    const png = dataUrl(3000, 'image/png', 9).url;

    await call({ method: 'GET', url: '/healthz', key: null });
    await call({ method: 'GET', url: '/readyz', key: null });
    await call({ method: 'GET', url: '/openapi.json', key: null });
    await call({ method: 'GET', url: '/nope', key: null });

    // Credentials and scopes.
    await call({ method: 'GET', url: '/v1/jobs', key: null });
    await call({ method: 'GET', url: '/v1/jobs', key: 'sk_not_a_key' });
    await call({ method: 'GET', url: '/v1/jobs', key: worker });
    await call({ method: 'POST', url: '/v1/worker/claim', body: { worker_id: 'w' } });

    // Creates.
    clock.at(1);
    const small = await call({
      method: 'POST',
      url: '/v1/jobs',
      body: {
        endpoint: 'documents/parse',
        request: { document: { filename: 'a.txt', url: 'data:text/plain;base64,aGVsbG8=' } },
        metadata: { batch_id: 'b1', customer: 'acme' },
      },
    });
    const invoice = {
      method: 'POST',
      url: '/v1/jobs',
      headers: { 'idempotency-key': 'invoice-42' },
      body: {
        endpoint: '/v1/documents/extract',
        request: {
          documents: [
            { filename: 'a.pdf', url: pdf },
            { filename: 'b.png', url: png },
          ],
          model: 'small',
        },
        max_attempts: 2,
      },
    } as const;
    clock.at(2);
    const big = await call(invoice);
    clock.at(3);
    await call(invoice); // the same key and body again: a replay
    await call({
      method: 'POST',
      url: '/v1/jobs',
      headers: { 'idempotency-key': 'invoice-42' },
      body: { endpoint: '/v1/documents/extract', request: { document: { filename: 'c', url: pdf } } },
    });
    clock.at(4);
    const whole = await call({
      method: 'POST',
      url: '/v1/jobs',
      body: {
        endpoint: '/v1/schemas/generate',
        request: { text: 'x'.repeat(9000), order: { b: 1, a: 2 } },
        metadata: null,
      },
    });
    await call({ method: 'POST', url: '/v1/jobs', body: { endpoint: '/v1/unknown', request: {} } });
    await call({ method: 'POST', url: '/v1/jobs', body: { endpoint: '/v1/documents/parse', request: {} } });
    await call({
      method: 'POST',
      url: '/v1/jobs',
      body: { endpoint: '/v1/schemas/generate', request: {}, max_attempts: 11 },
    });
    await call({ method: 'POST', url: '/v1/jobs', body: { endpoint: '/v1/schemas/generate' } });
    await call({
      method: 'POST',
      url: '/v1/jobs',
      body: { endpoint: '/v1/schemas/generate', request: {}, metadata: { k: 1 } },
    });
    await call({
      method: 'POST',
      url: '/v1/jobs',
      body: { endpoint: '/v1/schemas/generate', request: {}, x: 1 },
    });
    await call({ method: 'POST', url: '/v1/jobs', rawBody: '{"endpoint": ' });
    await call({ method: 'POST', url: '/v1/jobs', rawBody: '[1]' });
    await call({
      method: 'POST',
      url: '/v1/jobs',
      rawBody: 'endpoint=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });

    const smallId = small.json().id as string;
    const bigId = big.json().id as string;
    const wholeId = whole.json().id as string;

    // Reads.
    await call({ method: 'GET', url: `/v1/jobs/${smallId}` });
    await call({ method: 'GET', url: `/v1/jobs/${bigId}?include_request=true` });
    await call({ method: 'GET', url: `/v1/jobs/${wholeId}?include_request=1&include_response=true` });
    await call({ method: 'GET', url: `/v1/jobs/${smallId}`, key: stranger });
    await call({ method: 'GET', url: '/v1/jobs/nope' });
    await call({ method: 'GET', url: `/v1/jobs/${smallId}?include_request=yes` });
    const status = await call({ method: 'GET', url: `/v1/jobs/${smallId}/status` });
    await call({
      method: 'GET',
      url: `/v1/jobs/${smallId}/status`,
      headers: { 'if-none-match': status.headers.etag as string },
    });
    await call({ method: 'GET', url: `/v1/jobs/${smallId}/status?wait_seconds=61` });
    await call({ method: 'GET', url: `/v1/jobs/${smallId}/attempts` });

    // Lists.
    await call({ method: 'GET', url: '/v1/jobs' });
    await call({ method: 'GET', url: '/v1/jobs?limit=1&order=asc' });
    await call({ method: 'GET', url: `/v1/jobs?limit=1&after=${smallId}&order=asc` });
    await call({ method: 'GET', url: `/v1/jobs?limit=1&before=${wholeId}` });
    await call({ method: 'GET', url: '/v1/jobs?status=queued&endpoint=documents/parse' });
    await call({ method: 'GET', url: `/v1/jobs?metadata=${encodeURIComponent('{"customer":"acme"}')}` });
    await call({
      method: 'GET',
      url: '/v1/jobs?from_date=2030-01-01&to_date=2030-01-01&include_request=true',
    });
    await call({ method: 'GET', url: '/v1/jobs?limit=0' });
    await call({ method: 'GET', url: '/v1/jobs?limit=50&include_response=true' });
    await call({ method: 'GET', url: '/v1/jobs?metadata=nope' });
    await call({ method: 'GET', url: '/v1/jobs?from_date=2030-02-30' });
    await call({ method: 'GET', url: `/v1/jobs?after=${smallId}&before=${smallId}` });
    await call({ method: 'GET', url: '/v1/jobs?endpoint=nowhere' });

    // The worker protocol: claim the three jobs oldest first, then report each differently.
    clock.at(10);
    await call({ method: 'POST', url: '/v1/worker/claim', key: worker, body: {} });
    await call({
      method: 'POST',
      url: '/v1/worker/claim',
      key: worker,
      body: { worker_id: 'w', endpoints: ['/v1/x'] },
    });
    const claim = await call({
      method: 'POST',
      url: '/v1/worker/claim',
      key: worker,
      body: { worker_id: 'worker-a', limit: 3, lease_seconds: 120 },
    });
    const leases = claim.json().data as { job: { id: string }; lease_token: string }[];
    const token = (id: string) => leases.find((l) => l.job.id === id)?.lease_token as string;
    await call({ method: 'POST', url: '/v1/worker/claim', key: worker, body: { worker_id: 'worker-b' } });

    clock.at(20);
    await call({
      method: 'POST',
      url: `/v1/worker/jobs/${smallId}/heartbeat`,
      key: worker,
      body: { lease_token: token(smallId), lease_seconds: 90 },
    });
    await call({
      method: 'POST',
      url: `/v1/worker/jobs/${smallId}/heartbeat`,
      key: worker,
      body: { lease_token: '00000000-0000-4000-8000-000000000000' },
    });
    await call({ method: 'POST', url: `/v1/jobs/${wholeId}/cancel` });
    await call({
      method: 'POST',
      url: `/v1/worker/jobs/${wholeId}/heartbeat`,
      key: worker,
      body: { lease_token: token(wholeId) },
    });
    await call({ method: 'POST', url: `/v1/jobs/${wholeId}/cancel` });

    clock.at(30);
    const completion = {
      lease_token: token(smallId),
      response: { status_code: 200, body: { text: 'hello', image: png, z: 1, a: 2 } },
      warnings: [{ code: 'low_quality', message: 'The scan is blurry.' }],
    };
    await call({ method: 'POST', url: `/v1/worker/jobs/${smallId}/complete`, key: worker, body: completion });
    await call({ method: 'POST', url: `/v1/worker/jobs/${smallId}/complete`, key: worker, body: completion });
    await call({
      method: 'POST',
      url: `/v1/worker/jobs/${bigId}/fail`,
      key: worker,
      body: { lease_token: token(bigId), error: { code: 'boom', message: 'It broke.' }, retryable: false },
    });
    await call({
      method: 'POST',
      url: `/v1/worker/jobs/${wholeId}/release`,
      key: worker,
      body: { lease_token: token(wholeId) },
    });
    await call({
      method: 'POST',
      url: `/v1/worker/jobs/${wholeId}/cancelled`,
      key: worker,
      body: { lease_token: token(wholeId) },
    });
    await call({
      method: 'POST',
      url: `/v1/worker/jobs/${smallId}/fail`,
      key: worker,
      body: { lease_token: token(smallId), error: { code: '' }, retryable: true },
    });

    clock.at(40);
    await call({ method: 'GET', url: `/v1/jobs/${smallId}?include_response=true&include_request=true` });
    await call({ method: 'GET', url: `/v1/jobs/${smallId}/status` });
    await call({ method: 'GET', url: `/v1/jobs/${smallId}/attempts` });
    await call({ method: 'GET', url: `/v1/jobs/${bigId}/attempts` });
    await call({ method: 'GET', url: `/v1/jobs/${wholeId}/attempts` });
    await call({ method: 'POST', url: `/v1/jobs/${smallId}/cancel` });
    await call({ method: 'POST', url: `/v1/jobs/${smallId}/retry` });

    clock.at(50);
    await call({ method: 'POST', url: `/v1/jobs/${bigId}/retry`, rawBody: '' });
    await call({ method: 'POST', url: `/v1/jobs/${wholeId}/retry` });
    await call({ method: 'GET', url: '/v1/jobs?include_response=true&order=asc' });

    // Time passes until the jobs expire (7 days), then the sweeper runs.
    clock.at(604_900);
    await sweepExpiredJobs({ ...ctx.jobs, clock });
    await call({ method: 'GET', url: `/v1/jobs/${bigId}?include_request=true` });
    await call({ method: 'GET', url: `/v1/jobs/${smallId}/status` });

    await expect(lines.join('\n')).toMatchFileSnapshot('./api-transcript.txt');
  });
});
