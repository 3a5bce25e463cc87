/**
 * A small in-memory server speaking the part of the GCS JSON API that `@google-cloud/storage`
 * uses for objects, so tests run the real client (its retries, its checksum validation, its
 * resumable protocol) without a GCS emulator, which cannot be installed on these machines.
 *
 * It is also where faults come from: a status code, a delay, corrupted or truncated bytes, per
 * operation and per object name. See `FaultRule`.
 *
 *   const gcs = await startFakeGcsServer();
 *   const store = new GcsObjectStore({ bucket: 'b', prefix: 'p', apiEndpoint: gcs.url });
 *   const fault = gcs.faults.add({ op: 'get', prefix: 'p/org1/', type: 'status', status: 503, times: 1 });
 *   ...
 *   expect(fault.hits).toBe(1);
 *   await gcs.stop();
 *
 * Any bucket exists unless `buckets` is given. Not implemented: generations/preconditions
 * (answered as if met), ACLs, compose/copy/rewrite, gzip transcoding.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { crc32cBase64 } from './crc32c.js';

/**
 * `put` is the upload request itself (multipart, or the start of a resumable upload);
 * `put-chunk` is each `PUT` to a resumable session; `stat` reads metadata; `get` reads bytes.
 */
export type FakeGcsOperation = 'put' | 'put-chunk' | 'get' | 'stat' | 'delete' | 'list';

export type FaultAction =
  /** Answer with this status and a GCS-shaped error body. */
  | { type: 'status'; status: number; message?: string }
  /** Wait before handling the request normally (other matching rules still apply). */
  | { type: 'delay'; ms: number }
  /**
   * `get`: serve the bytes with some flipped. By default without `x-goog-hash` and
   * `x-goog-stored-content-encoding`: without those the client skips its own CRC32C check (with
   * the encoding header but no hash it would fail the download itself), so the bad bytes reach
   * the caller and the caller's sha256 comparison is what catches them. `keepHash: true` sends the
   * original object's hashes instead, so the client's own validation rejects the download.
   * `put`/`put-chunk`: store flipped bytes and report their checksums, as a server that mangled
   * the upload would; the client then deletes the object and fails the upload.
   */
  | { type: 'corrupt'; keepHash?: boolean }
  /**
   * `get`: serve only the first `bytes` bytes. By default as a complete, shorter answer without
   * hashes (the caller's size/sha256 check catches it); with `cutConnection` the headers promise
   * the whole object and the socket is destroyed after `bytes` bytes (the client sees an error).
   * `put`/`put-chunk`: store only the first `bytes` bytes of the object.
   */
  | { type: 'truncate'; bytes: number; cutConnection?: boolean };

export type FaultRule = FaultAction & {
  /** Operations the rule applies to; absent: all. */
  op?: FakeGcsOperation | FakeGcsOperation[];
  bucket?: string;
  /** Exact object name (with the store's prefix, as GCS sees it). */
  name?: string;
  prefix?: string;
  test?: (name: string, op: FakeGcsOperation) => boolean;
  /** Let this many matching requests through before the rule starts firing. */
  skip?: number;
  /** Fire this many times, then stop; absent: for ever. */
  times?: number;
};

export interface Fault {
  /** How many requests the rule fired on. */
  readonly hits: number;
  remove(): void;
}

export interface FakeGcsObject {
  bucket: string;
  name: string;
  data: Buffer;
  contentType: string;
  generation: string;
  crc32c: string;
  md5Hash: string;
  updated: string;
}

export interface RecordedRequest {
  method: string;
  op: FakeGcsOperation | 'other';
  bucket?: string;
  name?: string;
  headers: IncomingHttpHeaders;
  /** Filled in when the answer is sent; 0 while pending or when the connection was cut. */
  status: number;
}

export interface FakeGcsServer {
  /** Base URL to pass as `apiEndpoint`, e.g. `http://127.0.0.1:40123`. */
  url: string;
  objects: {
    get(bucket: string, name: string): FakeGcsObject | undefined;
    /** Seeds an object directly, bypassing faults. */
    put(bucket: string, name: string, data: Buffer, contentType?: string): FakeGcsObject;
    delete(bucket: string, name: string): boolean;
    names(bucket: string): string[];
  };
  faults: {
    add(rule: FaultRule): Fault;
    clear(): void;
  };
  /** Every request received, oldest first. */
  requests: RecordedRequest[];
  /** Forgets objects, upload sessions, faults and recorded requests. */
  reset(): void;
  stop(): Promise<void>;
}

interface UploadSession {
  bucket: string;
  name: string;
  contentType: string;
  chunks: Buffer[];
  received: number;
  total?: number;
  done?: FakeGcsObject;
}

interface ActiveRule {
  rule: FaultRule;
  seen: number;
  hits: number;
  removed: boolean;
}

type Outcome = Exclude<FaultAction, { type: 'delay' }>;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startFakeGcsServer(options: { buckets?: string[] } = {}): Promise<FakeGcsServer> {
  const objects = new Map<string, FakeGcsObject>();
  const sessions = new Map<string, UploadSession>();
  let rules: ActiveRule[] = [];
  const requests: RecordedRequest[] = [];
  const stopping = new AbortController();
  let generation = Date.now() * 1000;
  let baseUrl = '';

  const keyOf = (bucket: string, name: string) => `${bucket}/${name}`;

  function store(bucket: string, name: string, data: Buffer, contentType: string): FakeGcsObject {
    const object: FakeGcsObject = {
      bucket,
      name,
      data,
      contentType,
      // Strictly increasing, as the real server's are; clients compare them as strings of digits.
      generation: String(++generation),
      crc32c: crc32cBase64(data),
      md5Hash: createHash('md5').update(data).digest('base64'),
      updated: new Date().toISOString(),
    };
    objects.set(keyOf(bucket, name), object);
    return object;
  }

  function resource(object: FakeGcsObject) {
    const path = `b/${encodeURIComponent(object.bucket)}/o/${encodeURIComponent(object.name)}`;
    return {
      kind: 'storage#object',
      id: `${object.bucket}/${object.name}/${object.generation}`,
      selfLink: `${baseUrl}/storage/v1/${path}`,
      mediaLink: `${baseUrl}/download/storage/v1/${path}?generation=${object.generation}&alt=media`,
      name: object.name,
      bucket: object.bucket,
      generation: object.generation,
      metageneration: '1',
      contentType: object.contentType,
      storageClass: 'STANDARD',
      // GCS sends 64-bit numbers as strings.
      size: String(object.data.length),
      md5Hash: object.md5Hash,
      crc32c: object.crc32c,
      etag: object.md5Hash,
      timeCreated: object.updated,
      updated: object.updated,
    };
  }

  /** Runs the delays of every matching rule and answers the first other fault that matches. */
  async function applyFaults(
    op: FakeGcsOperation,
    bucket: string,
    name: string,
    signal: AbortSignal,
  ): Promise<Outcome | undefined> {
    let outcome: Outcome | undefined;
    for (const active of [...rules]) {
      const { rule } = active;
      if (active.removed || !matches(rule, op, bucket, name)) continue;
      if (rule.type !== 'delay' && outcome) continue;
      active.seen++;
      if (active.seen <= (rule.skip ?? 0)) continue;
      if (rule.times !== undefined && active.hits >= rule.times) continue;
      active.hits++;
      if (rule.type === 'delay') await sleep(rule.ms, undefined, { signal });
      else outcome = rule;
    }
    return outcome;
  }

  function matches(rule: FaultRule, op: FakeGcsOperation, bucket: string, name: string): boolean {
    const ops = rule.op === undefined ? undefined : Array.isArray(rule.op) ? rule.op : [rule.op];
    return (
      (ops === undefined || ops.includes(op)) &&
      (rule.bucket === undefined || rule.bucket === bucket) &&
      (rule.name === undefined || rule.name === name) &&
      (rule.prefix === undefined || name.startsWith(rule.prefix)) &&
      (rule.test === undefined || rule.test(name, op))
    );
  }

  function bucketExists(bucket: string): boolean {
    return options.buckets === undefined || options.buckets.includes(bucket);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, record: RecordedRequest): Promise<void> {
    const url = new URL(req.url ?? '/', baseUrl);
    const method = req.method ?? 'GET';
    // Whatever the route, read the body first: answering early would leave the client writing
    // into a connection the server has stopped reading.
    const body = await readBody(req);
    // A delay ends early when the client hangs up or the server stops.
    const gone = AbortSignal.any([stopping.signal, closedSignal(res)]);

    let match = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname);
    if (match && method === 'POST') {
      const bucket = decodeURIComponent(match[1]);
      return startUpload(url, req, res, body, bucket, gone, record);
    }
    if (match && method === 'PUT') {
      return continueUpload(url, req, res, body, gone, record);
    }

    match = /^\/storage\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(url.pathname);
    if (match) {
      const bucket = decodeURIComponent(match[1]);
      // The client encodes the whole name, `/` included, as one path segment.
      const name = decodeURIComponent(match[2]);
      if (method === 'GET') {
        const op = url.searchParams.get('alt') === 'media' ? 'get' : 'stat';
        Object.assign(record, { op, bucket, name });
        const outcome = await applyFaults(op, bucket, name, gone);
        throwIfStatus(outcome);
        const object = findObject(bucket, name);
        return op === 'get' ? sendMedia(req, res, object, outcome) : sendJson(res, 200, resource(object));
      }
      if (method === 'DELETE') {
        Object.assign(record, { op: 'delete', bucket, name });
        throwIfStatus(await applyFaults('delete', bucket, name, gone));
        findObject(bucket, name);
        objects.delete(keyOf(bucket, name));
        res.writeHead(204).end();
        return;
      }
    }

    match = /^\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname);
    if (match && method === 'GET') {
      const bucket = decodeURIComponent(match[1]);
      const prefix = url.searchParams.get('prefix') ?? '';
      Object.assign(record, { op: 'list', bucket, name: prefix });
      throwIfStatus(await applyFaults('list', bucket, prefix, gone));
      return sendJson(res, 200, list(bucket, url.searchParams));
    }

    match = /^\/storage\/v1\/b\/([^/]+)$/.exec(url.pathname);
    if (match && method === 'GET') {
      const bucket = decodeURIComponent(match[1]);
      if (!bucketExists(bucket)) throw new HttpError(404, `The specified bucket does not exist: ${bucket}`);
      return sendJson(res, 200, { kind: 'storage#bucket', id: bucket, name: bucket, location: 'US' });
    }

    throw new HttpError(400, `fake GCS server: no route for ${method} ${url.pathname}`);
  }

  function findObject(bucket: string, name: string): FakeGcsObject {
    if (!bucketExists(bucket)) throw new HttpError(404, `The specified bucket does not exist: ${bucket}`);
    const object = objects.get(keyOf(bucket, name));
    if (!object) throw new HttpError(404, `No such object: ${bucket}/${name}`);
    return object;
  }

  async function startUpload(
    url: URL,
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    bucket: string,
    gone: AbortSignal,
    record: RecordedRequest,
  ): Promise<void> {
    const uploadType = url.searchParams.get('uploadType');
    let metadata: { name?: string; contentType?: string; crc32c?: string; md5Hash?: string } = {};
    let media = body;
    if (uploadType === 'multipart') {
      const parts = parseMultipart(req.headers['content-type'] ?? '', body);
      if (parts.length !== 2) throw new HttpError(400, `multipart upload with ${parts.length} parts`);
      metadata = JSON.parse(parts[0].body.toString('utf8'));
      metadata.contentType ??= parts[1].contentType;
      media = parts[1].body;
    } else if (uploadType === 'resumable') {
      if (body.length > 0) metadata = JSON.parse(body.toString('utf8'));
    } else if (uploadType !== 'media') {
      throw new HttpError(400, `unsupported uploadType ${uploadType}`);
    }
    const name = url.searchParams.get('name') ?? metadata.name;
    if (!name) throw new HttpError(400, 'upload without an object name');
    Object.assign(record, { op: 'put', bucket, name });
    if (!bucketExists(bucket)) throw new HttpError(404, `The specified bucket does not exist: ${bucket}`);

    const outcome = await applyFaults('put', bucket, name, gone);
    throwIfStatus(outcome);
    // A resumable start carries the media type in a header (its own body is JSON), a media upload
    // in Content-Type; a multipart one in the metadata or the media part.
    const contentType =
      metadata.contentType ??
      (uploadType === 'resumable' ? header(req, 'x-upload-content-type') : undefined) ??
      (uploadType === 'media' ? header(req, 'content-type') : undefined) ??
      '';

    if (uploadType === 'resumable') {
      const id = randomUUID();
      const declared = header(req, 'x-upload-content-length');
      sessions.set(id, {
        bucket,
        name,
        contentType: contentType || 'application/octet-stream',
        chunks: [],
        received: 0,
        total: declared === undefined ? undefined : Number(declared),
      });
      const location = new URL(url.pathname, baseUrl);
      location.searchParams.set('uploadType', 'resumable');
      location.searchParams.set('name', name);
      location.searchParams.set('upload_id', id);
      res.writeHead(200, { Location: location.href, 'Content-Length': 0 }).end();
      return;
    }

    const data = mangleUpload(media, outcome);
    if (!outcome) verifyClaimedHashes(data, metadata.crc32c, metadata.md5Hash);
    const object = store(bucket, name, data, contentType || 'application/octet-stream');
    sendJson(res, 200, resource(object));
  }

  async function continueUpload(
    url: URL,
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    gone: AbortSignal,
    record: RecordedRequest,
  ): Promise<void> {
    const session = sessions.get(url.searchParams.get('upload_id') ?? '');
    if (!session) throw new HttpError(404, 'no such upload session');
    Object.assign(record, { op: 'put-chunk', bucket: session.bucket, name: session.name });
    const outcome = await applyFaults('put-chunk', session.bucket, session.name, gone);
    throwIfStatus(outcome);
    if (session.done) return sendJson(res, 200, resource(session.done));

    // `bytes */*` or `bytes */N`: a status query, or a last request with no bytes in it.
    // `bytes A-B/N`, `bytes A-*/N`, `bytes A-B/*`: bytes from A; N is the total once known.
    const range = /^bytes (?:\*|(\d+)-(\d+|\*))\/(\d+|\*)$/.exec(header(req, 'content-range') ?? '');
    if (!range) throw new HttpError(400, `bad Content-Range ${header(req, 'content-range')}`);
    if (range[3] !== '*') session.total = Number(range[3]);
    if (range[1] !== undefined) {
      const start = Number(range[1]);
      if (start > session.received) {
        throw new HttpError(400, `upload resumes at ${start} but only ${session.received} bytes arrived`);
      }
      // A client resending bytes the server already has: keep the first copy.
      const fresh = body.subarray(session.received - start);
      session.chunks.push(fresh);
      session.received += fresh.length;
    }

    if (session.total === undefined || session.received < session.total) {
      // 308 "Resume Incomplete", with the last byte received, or no Range when there is none.
      const headers: Record<string, string | number> = { 'Content-Length': 0 };
      if (session.received > 0) headers.Range = `bytes=0-${session.received - 1}`;
      res.writeHead(308, headers).end();
      return;
    }
    if (session.received > session.total) {
      throw new HttpError(400, `received ${session.received} bytes of an object of ${session.total}`);
    }
    const data = mangleUpload(Buffer.concat(session.chunks), outcome);
    if (!outcome) {
      const hashes = parseHashHeader(header(req, 'x-goog-hash'));
      verifyClaimedHashes(data, hashes.crc32c, hashes.md5);
    }
    session.done = store(session.bucket, session.name, data, session.contentType);
    session.chunks = [];
    sendJson(res, 200, resource(session.done));
  }

  function list(bucket: string, params: URLSearchParams) {
    if (!bucketExists(bucket)) throw new HttpError(404, `The specified bucket does not exist: ${bucket}`);
    const prefix = params.get('prefix') ?? '';
    const delimiter = params.get('delimiter') ?? '';
    const maxResults = Number(params.get('maxResults') ?? 1000);
    const after = params.get('pageToken')
      ? Buffer.from(params.get('pageToken') ?? '', 'base64url').toString()
      : '';
    const names = [...objects.values()]
      .filter((o) => o.bucket === bucket && o.name.startsWith(prefix) && o.name > after)
      .map((o) => o.name)
      .sort();
    const items: FakeGcsObject[] = [];
    const prefixes = new Set<string>();
    let last = '';
    for (const name of names) {
      if (items.length + prefixes.size >= maxResults) {
        return page(items, prefixes, last);
      }
      const cut = delimiter ? name.indexOf(delimiter, prefix.length) : -1;
      if (cut >= 0) prefixes.add(name.slice(0, cut + delimiter.length));
      else items.push(objects.get(keyOf(bucket, name)) as FakeGcsObject);
      last = name;
    }
    return page(items, prefixes, undefined);
  }

  function page(items: FakeGcsObject[], prefixes: Set<string>, last: string | undefined) {
    return {
      kind: 'storage#objects',
      items: items.map(resource),
      ...(prefixes.size > 0 ? { prefixes: [...prefixes] } : {}),
      ...(last === undefined ? {} : { nextPageToken: Buffer.from(last).toString('base64url') }),
    };
  }

  function sendMedia(req: IncomingMessage, res: ServerResponse, object: FakeGcsObject, outcome?: Outcome) {
    let data = object.data;
    let withHashes = true;
    if (outcome?.type === 'corrupt') {
      data = flipBytes(data);
      withHashes = outcome.keepHash === true;
    }
    let cutAfter: number | undefined;
    if (outcome?.type === 'truncate') {
      if (outcome.cutConnection) cutAfter = outcome.bytes;
      else {
        data = data.subarray(0, outcome.bytes);
        withHashes = false;
      }
    }

    const headers: Record<string, string | number> = {
      'Content-Type': object.contentType,
      'x-goog-generation': object.generation,
      'x-goog-metageneration': '1',
      'x-goog-stored-content-length': object.data.length,
      'x-goog-storage-class': 'STANDARD',
      'Accept-Ranges': 'bytes',
    };
    if (withHashes) {
      // The client checks a full download against these, and only when the stored encoding is
      // given: it must know the bytes were not transcoded on the way.
      headers['x-goog-hash'] = `crc32c=${object.crc32c},md5=${object.md5Hash}`;
      headers['x-goog-stored-content-encoding'] = 'identity';
    }
    let status = 200;
    const range = parseRange(header(req, 'range'), data.length);
    if (range === 'unsatisfiable') throw new HttpError(416, 'The requested range cannot be satisfied.');
    if (range) {
      status = 206;
      headers['Content-Range'] = `bytes ${range.start}-${range.end}/${data.length}`;
      data = data.subarray(range.start, range.end + 1);
    }
    headers['Content-Length'] = data.length;
    res.writeHead(status, headers);
    if (cutAfter === undefined) {
      res.end(data);
      return;
    }
    res.write(data.subarray(0, cutAfter), () => res.destroy());
  }

  const server = createServer((req, res) => {
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      op: 'other',
      headers: req.headers,
      status: 0,
    };
    requests.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    handle(req, res, record).catch((error: unknown) => {
      if (res.headersSent || res.destroyed || stopping.signal.aborted) {
        res.destroy();
        return;
      }
      if (error instanceof HttpError) sendError(res, error.status, error.message);
      else if ((error as Error).name === 'AbortError') res.destroy();
      else sendError(res, 500, `fake GCS server bug: ${(error as Error).stack ?? String(error)}`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: baseUrl,
    objects: {
      get: (bucket, name) => objects.get(keyOf(bucket, name)),
      put: (bucket, name, data, contentType = 'application/octet-stream') =>
        store(bucket, name, data, contentType),
      delete: (bucket, name) => objects.delete(keyOf(bucket, name)),
      names: (bucket) =>
        [...objects.values()]
          .filter((o) => o.bucket === bucket)
          .map((o) => o.name)
          .sort(),
    },
    faults: {
      add(rule) {
        const active: ActiveRule = { rule, seen: 0, hits: 0, removed: false };
        rules.push(active);
        return {
          get hits() {
            return active.hits;
          },
          remove() {
            active.removed = true;
            rules = rules.filter((r) => r !== active);
          },
        };
      },
      clear() {
        for (const active of rules) active.removed = true;
        rules = [];
      },
    },
    requests,
    reset() {
      objects.clear();
      sessions.clear();
      for (const active of rules) active.removed = true;
      rules = [];
      requests.length = 0;
    },
    async stop() {
      stopping.abort();
      // Keep-alive sockets of the client would hold `close` open until they time out.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}

function throwIfStatus(outcome: Outcome | undefined): void {
  if (outcome?.type === 'status') throw new HttpError(outcome.status, outcome.message ?? 'injected fault');
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=UTF-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

const REASONS: Record<number, string> = {
  400: 'invalid',
  401: 'required',
  403: 'forbidden',
  404: 'notFound',
  408: 'requestTimeout',
  412: 'conditionNotMet',
  416: 'requestedRangeNotSatisfiable',
  429: 'rateLimitExceeded',
  503: 'backendError',
};

/** The error shape of the JSON API, which the client turns into an ApiError with `code`. */
function sendError(res: ServerResponse, status: number, message: string): void {
  const reason = REASONS[status] ?? (status >= 500 ? 'backendError' : 'invalid');
  sendJson(res, status, {
    error: { code: status, message, errors: [{ message, domain: 'global', reason }] },
  });
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function closedSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => controller.abort());
  return controller.signal;
}

/** `multipart/related` as the client writes it: `--boundary`, part headers, blank line, body. */
function parseMultipart(contentType: string, body: Buffer): { contentType?: string; body: Buffer }[] {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!boundary) throw new HttpError(400, `multipart upload without a boundary: ${contentType}`);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: { contentType?: string; body: Buffer }[] = [];
  let at = body.indexOf(delimiter);
  while (at !== -1) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next === -1) throw new HttpError(400, 'multipart body without a closing boundary');
    // Between delimiters: CRLF, headers, CRLF CRLF, body, CRLF.
    const part = body.subarray(start + 2, next - 2);
    const split = part.indexOf('\r\n\r\n');
    if (split === -1) throw new HttpError(400, 'multipart part without headers');
    const headers = part.subarray(0, split).toString('utf8');
    parts.push({
      contentType: /^content-type:\s*(.+)$/im.exec(headers)?.[1].trim(),
      body: part.subarray(split + 4),
    });
    at = next;
  }
  return parts;
}

function parseHashHeader(value: string | undefined): { crc32c?: string; md5?: string } {
  const hashes: Record<string, string> = {};
  for (const pair of (value ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at > 0) hashes[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return { crc32c: hashes.crc32c, md5: hashes.md5 };
}

/** The real server refuses an upload whose declared checksums do not match what arrived. */
function verifyClaimedHashes(data: Buffer, crc32c: string | undefined, md5: string | undefined): void {
  if (crc32c !== undefined && crc32c !== crc32cBase64(data)) {
    throw new HttpError(400, `Provided CRC32C "${crc32c}" doesn't match calculated CRC32C`);
  }
  if (md5 !== undefined && md5 !== createHash('md5').update(data).digest('base64')) {
    throw new HttpError(400, `Provided MD5 hash "${md5}" doesn't match calculated MD5 hash`);
  }
}

function mangleUpload(data: Buffer, outcome: Outcome | undefined): Buffer {
  if (outcome?.type === 'corrupt') return flipBytes(data);
  if (outcome?.type === 'truncate') return data.subarray(0, outcome.bytes);
  return data;
}

/** A copy with the first, middle and last bytes inverted: same length, different content. */
function flipBytes(data: Buffer): Buffer {
  const copy = Buffer.from(data);
  for (const i of new Set([0, copy.length >> 1, copy.length - 1])) {
    if (i >= 0 && i < copy.length) copy[i] ^= 0xff;
  }
  return copy;
}

/** A single `bytes=` range, as the client sends for partial reads. */
function parseRange(
  value: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(value ?? '');
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    // `bytes=-N`: the last N bytes.
    start = Math.max(size - Number(match[2]), 0);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}
