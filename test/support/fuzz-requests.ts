import { randomUUID } from 'node:crypto';
import querystring from 'node:querystring';
import fc from 'fast-check';
import { BUILTIN_ENDPOINTS } from '../../src/domain/endpoints.js';
import { JOB_STATUSES } from '../../src/domain/job-statuses.js';

/**
 * Generated HTTP requests for the fuzz test (test/http/request-fuzz.test.ts). A request is plain
 * data so that fast-check can print and shrink it; the parts that depend on the database at the
 * moment of sending (a job in a given state, the lease token of a running job, an API key) are
 * `SlotValue`s, resolved by the test right before the request goes out.
 *
 * Three generators:
 * - `clientRequest`: create, retrieve, status, list, cancel, retry, attempts and the health
 *   routes; valid requests, or the same with one field changed (wrong type, edge number, NUL,
 *   lone surrogate, emoji, long text, nesting on both sides of BODY_MAX_DEPTH, broken data: URLs,
 *   awkward keys), removed or added; query parameters absent, valid, odd (hex, exponent, padded
 *   and non-ASCII numbers, percent-encoded garbage) or repeated; odd headers.
 * - `workerRequest`: claim and the five reports, against running jobs with their own lease token
 *   or another one (of another job, organization or ended attempt, in capitals, random).
 * - `wildRequest`: any method, any path (percent-encoded garbage included), any query, any body
 *   (JSON or not, over the body limit), any content type.
 * Every one carries a key in one of the three places (Api-Key, Authorization: Bearer,
 * access_token), sometimes the wrong one, a revoked one, garbage, none, or a wrong one besides.
 */

// ---------------------------------------------------------------------------------------------
// Values that print short and serialise to exact text

/**
 * Text written verbatim into a JSON body where the value stands: numbers JSON.stringify cannot
 * spell (`1.0`, `1e0`, `0x10`), invalid JSON, or nesting thousands of levels deep (built as text
 * so the counterexample prints one line instead of the whole tree).
 */
export class RawJson {
  constructor(
    readonly text: string,
    readonly label: string = text,
  ) {}
  [fc.toStringMethod]() {
    return `raw(${this.label})`;
  }
}

/** The states a job slot resolves to; `other_*` are jobs of another organization. */
export const JOB_SLOTS = [
  'queued',
  'running',
  'cancelling',
  'validating',
  'completed',
  'failed',
  'cancelled',
  'expired',
  'other_org',
  'other_org_running',
] as const;
export type JobSlotName = (typeof JOB_SLOTS)[number];

/**
 * The lease tokens a report may carry: `own` is the current lease of the job in the path (or the
 * last one it had), `own_upper` the same in capitals, `other_running` another running job's,
 * `other_org` one of another organization, `ended` one whose attempt is over.
 */
export const LEASE_SLOTS = ['own', 'own_upper', 'other_running', 'other_org', 'ended'] as const;
export type LeaseSlotName = (typeof LEASE_SLOTS)[number];

/** The keys of the fixture: the caller's organization, the other one, a revoked key. */
export const KEY_NAMES = ['client', 'worker', 'admin', 'other_client', 'other_worker', 'revoked'] as const;
export type KeyName = (typeof KEY_NAMES)[number];

export type Slot =
  | { slot: 'job'; name: JobSlotName; pick: number }
  | { slot: 'lease'; name: LeaseSlotName; pick: number };

/** A placeholder in a request, replaced by what it names in the database when it is sent. */
export class SlotValue {
  constructor(readonly ref: Slot) {}
  [fc.toStringMethod]() {
    return `<${this.ref.slot}:${this.ref.name}#${this.ref.pick}>`;
  }
}

export const isSlot = (value: unknown): value is SlotValue => value instanceof SlotValue;

const jobSlot = (names: readonly JobSlotName[] = JOB_SLOTS) =>
  fc
    .record({ name: fc.constantFrom(...names), pick: fc.nat(7) })
    .map(({ name, pick }) => new SlotValue({ slot: 'job', name, pick }));
const leaseSlot = fc
  .record({ name: fc.constantFrom(...LEASE_SLOTS), pick: fc.nat(7) })
  .map(({ name, pick }) => new SlotValue({ slot: 'lease', name, pick }));

// ---------------------------------------------------------------------------------------------
// The request

export type Credential =
  | { key: KeyName | 'none' | { garbage: string }; via: CredentialPlace; decoy?: CredentialPlace }
  | { header: string; value: string };

/** Where the key goes; `decoy` puts a wrong key in a second place at the same time. */
export type CredentialPlace = 'api-key' | 'bearer' | 'bearer-lower' | 'bearer-padded' | 'access_token';

export type QueryItem = { name: string; value: string | SlotValue; encode: boolean };

export type Body =
  | { kind: 'none' }
  | { kind: 'json'; value: unknown }
  | { kind: 'text'; text: string }
  | { kind: 'bytes'; bytes: Uint8Array };

export interface RequestSpec {
  method: string;
  /** Joined as is: literal parts of the URL path and the job slot of its parameter. */
  path: (string | SlotValue)[];
  query: QueryItem[];
  /** Appended after the generated query, verbatim (percent-encoded garbage, repeated names). */
  rawQuery?: string;
  headers: [string, string][];
  credential: Credential;
  body: Body;
  /** Content-Type: omitted means application/json for a JSON body and none otherwise. */
  contentType?: string;
}

// ---------------------------------------------------------------------------------------------
// Building blocks

/** `arbitrary` one time in `n`, undefined otherwise (and undefined when shrinking). */
const oneIn = <T>(n: number, arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: n - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });

const SPECIAL_PIECES = [
  '\u0000',
  '\ud800',
  '\udfff',
  '\udc00\ud800',
  '😀',
  '👩‍👩‍👧',
  'é',
  'e\u0301',
  '\u202e',
  '\ufeff',
  '\uffff',
  '\u2028',
  '"',
  '\\',
  '/',
  '%',
  '%00',
  '%zz',
  '\n',
  '\t',
  ' ',
  '<x>',
  "'",
  '~1',
  '..',
  '__proto__',
];

/** Short strings built from awkward pieces: NUL, lone surrogates, emoji, escapes, separators. */
export const nastyString = fc
  .array(fc.oneof(fc.constantFrom(...SPECIAL_PIECES), fc.string({ unit: 'binary', maxLength: 6 })), {
    maxLength: 6,
  })
  .map((pieces) => pieces.join(''));

/** One character repeated: long strings without a long counterexample. */
const longString = fc
  .tuple(fc.constantFrom('a', 'é', '😀', '\u0000', ' '), fc.integer({ min: 60, max: 12_000 }))
  .map(([unit, count]) => unit.repeat(count));

/** Arrays or objects nested `depth` levels, as text. BODY_MAX_DEPTH is 128: both sides of it. */
const nested = fc
  .tuple(
    fc.oneof(fc.integer({ min: 120, max: 136 }), fc.integer({ min: 200, max: 5000 })),
    fc.constantFrom('array', 'object'),
  )
  .map(([depth, shape]) =>
    shape === 'array'
      ? new RawJson(`${'['.repeat(depth)}1${']'.repeat(depth)}`, `${depth} nested arrays`)
      : new RawJson(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`, `${depth} nested objects`),
  );

/** Numbers as JSON text, valid or not: what JSON.stringify would never write. */
const rawNumber = fc
  .constantFrom(
    '1.0',
    '1e0',
    '1E2',
    '-0',
    '1e400',
    '-1e400',
    '0.000001',
    '123456789012345678901234567890',
    '0x10',
    '01',
    '+1',
    '.5',
    '5.',
    'NaN',
    'Infinity',
    '1_000',
  )
  .map((text) => new RawJson(text));

const base64Of = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

/** Data URLs: valid (short, or longer than the fuzz app's offload threshold), not canonical, broken. */
export const dataUrl = fc.oneof(
  fc.constant('data:text/plain;base64,aGVsbG8='),
  fc
    .uint8Array({ minLength: 200, maxLength: 1500 })
    .map((bytes) => `data:application/pdf;base64,${base64Of(bytes)}`),
  fc.constantFrom(
    'data:text/plain;base64,aGVsbG8',
    'data:text/plain;base64,aGVs bG8=',
    'data:text/plain;base64,-_-_',
    'data:;base64,',
    'data:text/plain,not base64 at all',
    'DATA:text/plain;base64,aGVsbG8=',
    'data:text/plain;BASE64,aGVsbG8=',
  ),
  fc
    .tuple(
      fc.constantFrom('@@@', 'A', 'AAAAA', '====A', 'AB=C', '%%%', 'aGVsbG8=aGVs', 'é', '\u00ff\u00fe'),
      fc.nat(1200),
    )
    .map(([broken, size]) => `data:application/pdf;base64,${'QUFB'.repeat(size)}${broken}`),
  fc
    .tuple(nastyString, fc.uint8Array({ minLength: 0, maxLength: 600 }))
    .map(([mime, bytes]) => `data:${mime};base64,${base64Of(bytes)}`),
);

/** What replaces a field of a valid request: wrong types, edge numbers, awkward text, deep nesting. */
export const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(null, true, false, 0, -1, 1, 1.5, 1e308, -1e308, 2 ** 53 + 1) },
  { weight: 2, arbitrary: fc.constantFrom('', ' ', 'x', '0', '1', 'true', 'null', [], {}, [1], { a: 1 }) },
  { weight: 3, arbitrary: nastyString },
  { weight: 1, arbitrary: longString },
  { weight: 2, arbitrary: nested },
  { weight: 2, arbitrary: rawNumber },
  { weight: 2, arbitrary: dataUrl },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      new RawJson('{"__proto__":{"polluted":true}}'),
      new RawJson('{"constructor":{"prototype":{"x":1}}}'),
      new RawJson('{"a":1,"a":2}'),
    ),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

/**
 * Serialises a body to text: RawJson values are written verbatim in place of a marker string
 * (unique per call, so no generated string can collide with it). Slots must be resolved already.
 */
export function toJsonText(value: unknown, resolve: (slot: SlotValue) => string): string {
  const raws: string[] = [];
  const nonce = randomUUID();
  const text = JSON.stringify(value, (_key, v) => {
    if (v instanceof RawJson) {
      raws.push(v.text);
      return `${nonce}:${raws.length - 1}`;
    }
    if (v instanceof SlotValue) return resolve(v);
    return v;
  });
  if (text === undefined) return '';
  if (raws.length === 0) return text;
  return text.replace(new RegExp(`"${nonce}:(\\d+)"`, 'g'), (_m, i: string) => raws[Number(i)]);
}

/** Every slot of a value (bodies are shallow: deep parts are RawJson text). */
export function slotsOf(value: unknown, found: SlotValue[] = []): SlotValue[] {
  if (value instanceof SlotValue) found.push(value);
  else if (value !== null && typeof value === 'object' && !(value instanceof RawJson)) {
    for (const child of Object.values(value)) slotsOf(child, found);
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Mutations of a valid body: one field changed, removed, or one field added

type Path = readonly string[];

function setIn(target: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const base =
    target !== null && typeof target === 'object' && !(target instanceof RawJson) && !isSlot(target)
      ? target
      : {};
  const copy = (Array.isArray(base) ? [...base] : { ...base }) as Record<string, unknown>;
  // Defined, not assigned: a key named __proto__ must become a field, as JSON.parse makes it.
  Object.defineProperty(copy, head, {
    value: setIn(Object.hasOwn(copy, head) ? copy[head] : undefined, rest, value),
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return copy;
}

function deleteIn(target: unknown, path: Path): unknown {
  if (path.length === 0 || target === null || typeof target !== 'object') return target;
  const [head, ...rest] = path;
  const copy = (Array.isArray(target) ? [...target] : { ...target }) as Record<string, unknown>;
  if (rest.length === 0) delete copy[head];
  else copy[head] = deleteIn(copy[head], rest);
  return copy;
}

/** Keys a client may send: awkward text, names of Object.prototype, empty. */
const nastyKey = fc.oneof(
  nastyString,
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', ''),
);

/**
 * A valid body, or the same with one mutation at one of `paths`: a weird value (or one from
 * `extra`), the field removed, or a field added (an unknown one, or one with an awkward key in an
 * object the body holds).
 */
function nearlyValid(
  valid: fc.Arbitrary<Record<string, unknown>>,
  paths: readonly Path[],
  extra: fc.Arbitrary<unknown> = weirdValue,
): fc.Arbitrary<unknown> {
  const parents = [...new Map(paths.map((p) => [p.slice(0, -1).join('/'), p.slice(0, -1)])).values()];
  const mutation = fc.oneof(
    { weight: 5, arbitrary: fc.tuple(fc.constant('set' as const), fc.constantFrom(...paths), extra) },
    { weight: 3, arbitrary: fc.tuple(fc.constant('set' as const), fc.constantFrom(...paths), weirdValue) },
    { weight: 2, arbitrary: fc.tuple(fc.constant('delete' as const), fc.constantFrom(...paths)) },
    {
      weight: 2,
      arbitrary: fc.tuple(
        fc.constant('set' as const),
        fc.tuple(fc.constantFrom(...parents), nastyKey).map(([parent, key]): Path => [...parent, key]),
        fc.oneof(weirdValue, fc.constant('x')),
      ),
    },
  );
  return fc
    .tuple(
      valid,
      fc.oneof({ weight: 1, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: mutation }),
    )
    .map(([body, change]) => {
      if (!change) return body;
      return change[0] === 'delete' ? deleteIn(body, change[1]) : setIn(body, change[1], change[2]);
    });
}

/** A body that is not the JSON object a route expects: another JSON value, or not JSON at all. */
const wildBody: fc.Arbitrary<Body> = fc.oneof(
  fc.constant<Body>({ kind: 'none' }),
  fc.jsonValue({ maxDepth: 4 }).map((value): Body => ({ kind: 'json', value })),
  fc.oneof(nested, rawNumber).map((value): Body => ({ kind: 'json', value })),
  fc
    .constantFrom(
      '',
      ' ',
      '\n',
      'null',
      '{',
      '{"a":',
      '{"a":1}}',
      "{'a':1}",
      '{"a":1,}',
      '[1,]',
      '\ufeff{}',
      '{"a":"\\u0000"}',
      '{"a":"\\ud800"}',
      '{"\\udfff":1}',
      '{"a":"\\x41"}',
      'undefined',
      'true',
      '"text"',
      'a=1&b=2',
      '<xml/>',
    )
    .map((text): Body => ({ kind: 'text', text })),
  nastyString.map((text): Body => ({ kind: 'text', text })),
  fc.uint8Array({ maxLength: 200 }).map((bytes): Body => ({ kind: 'bytes', bytes })),
  // Larger than the fuzz app's BODY_LIMIT_BYTES: a 413.
  fc
    .integer({ min: 70_000, max: 90_000 })
    .map((size): Body => ({ kind: 'text', text: `{"a":"${'x'.repeat(size)}"}` })),
);

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json;charset=latin1',
  'application/json; charset=utf-16',
  'application/json; foo=bar',
  'application/json;',
  'application/jsonx',
  'application/vnd.api+json',
  'text/plain',
  'text/json',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  '*/*',
  ';;',
  'json',
  ' ',
];

// ---------------------------------------------------------------------------------------------
// Headers, query strings, credentials

/** Header values as they can arrive over HTTP: Latin-1, no control characters but tab. */
const headerText = fc.string({
  unit: fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
    { weight: 1, arbitrary: fc.integer({ min: 0xa0, max: 0xff }).map((c) => String.fromCharCode(c)) },
    { weight: 1, arbitrary: fc.constant('\t') },
  ),
  maxLength: 40,
});

const requestIdHeader = fc.oneof(
  fc.constantFrom('req-1', 'a'.repeat(200), 'a'.repeat(201), 'a b', '', 'é', 'x\ty'),
  headerText,
);

/** Headers any request may carry; most requests carry none of them. */
const extraHeaders: fc.Arbitrary<[string, string][]> = fc.array(
  fc.oneof(
    requestIdHeader.map((v): [string, string] => ['x-request-id', v]),
    fc
      .constantFrom('application/json', 'text/html', '*/*', 'application/xml', '')
      .map((v): [string, string] => ['accept', v]),
    fc.constantFrom('gzip', 'br', 'identity', 'x').map((v): [string, string] => ['accept-encoding', v]),
    headerText.map((v): [string, string] => ['x-forwarded-for', v]),
    fc.tuple(fc.constantFrom('x-custom', 'if-match', 'range', 'expect', 'origin'), headerText),
  ),
  { maxLength: 2 },
);

/**
 * A query value: either encoded (awkward text percent-encoded properly, lone surrogates as the
 * bytes a sloppy client would send) or raw (written into the URL as is).
 */
const queryGarbage = fc.constantFrom(
  '%',
  '%z',
  '%zz',
  '%00',
  '%ED%A0%80',
  '%C0%AF',
  '%F0%9F%98%80',
  '%E0%A4%A',
  '%2526',
  '+',
  '%20',
  '&&',
  '=',
  '==',
  '[]',
  ';',
);

/** Text a number-valued query parameter may hold: decimal edge cases and other spellings. */
const numberText = fc.constantFrom(
  '',
  ' ',
  '0',
  '-0',
  '00',
  '-1',
  '1.0',
  '1.5',
  '1e1',
  '1E1',
  '0x10',
  '0b1',
  '0o7',
  '+5',
  ' 5',
  '5 ',
  '101',
  '99999999999999999999999999',
  '-99999999999999999999999999',
  'Infinity',
  'NaN',
  'true',
  '١٢',
  '５',
);

/** Percent-encodes any string, lone surrogates included (as their 3 bytes, as WTF-8 writes them). */
export function percentEncode(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0) as number;
    if (code >= 0xd800 && code <= 0xdfff) {
      out +=
        `%${(0xe0 | (code >> 12)).toString(16)}%${(0x80 | ((code >> 6) & 0x3f)).toString(16)}%${(0x80 | (code & 0x3f)).toString(16)}`.toUpperCase();
    } else out += encodeURIComponent(char);
  }
  return out;
}

const queryValue = (valid: fc.Arbitrary<string | SlotValue>) =>
  fc.oneof(
    { weight: 6, arbitrary: valid.map((value) => ({ value, encode: true })) },
    { weight: 2, arbitrary: numberText.map((value) => ({ value, encode: true })) },
    { weight: 2, arbitrary: nastyString.map((value) => ({ value, encode: true })) },
    { weight: 1, arbitrary: longString.map((value) => ({ value, encode: true })) },
    { weight: 2, arbitrary: queryGarbage.map((value) => ({ value, encode: false })) },
  );

/**
 * A query string for `params` (name -> valid values): each parameter absent, valid, or odd;
 * sometimes repeated, sometimes with a name the route does not know.
 */
function queryFor(params: Record<string, fc.Arbitrary<string | SlotValue>>): fc.Arbitrary<QueryItem[]> {
  const names = Object.keys(params);
  const item = (name: string) =>
    queryValue(params[name]).map(({ value, encode }): QueryItem => ({ name, value, encode }));
  const chosen = names.length
    ? fc.uniqueArray(fc.constantFrom(...names), { maxLength: Math.min(names.length, 5) })
    : fc.constant([] as string[]);
  return fc
    .tuple(
      chosen.chain((picked) =>
        picked.length
          ? fc.tuple(...picked.map(item)).map((items): QueryItem[] => [...items])
          : fc.constant<QueryItem[]>([]),
      ),
      oneIn(6, names.length ? fc.constantFrom(...names).chain(item) : fc.constant(undefined)),
      oneIn(
        8,
        fc
          .tuple(fc.oneof(nastyString, queryGarbage, fc.constant('unknown')), nastyString)
          .map(([name, value]): QueryItem => ({ name, value, encode: true })),
      ),
    )
    .map(([items, repeated, unknown]) => [
      ...items,
      ...(repeated ? [repeated] : []),
      ...(unknown ? [unknown] : []),
    ]);
}

/** The caller's key, in one of the three places, sometimes with a wrong key in another. */
function credential(defaultKey: KeyName): fc.Arbitrary<Credential> {
  const place = fc.constantFrom<CredentialPlace>(
    'api-key',
    'bearer',
    'bearer-lower',
    'bearer-padded',
    'access_token',
  );
  return fc.oneof(
    { weight: 30, arbitrary: place.map((via): Credential => ({ key: defaultKey, via })) },
    {
      weight: 4,
      arbitrary: fc.record({ key: fc.constantFrom<KeyName | 'none'>(...KEY_NAMES, 'none'), via: place }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        key: fc.constant<KeyName>(defaultKey),
        via: place,
        decoy: place,
      }),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.oneof(headerText, fc.constantFrom('', ' ', 'sk_', `sk_${'A'.repeat(32)}`)), place)
        .map(([garbage, via]): Credential => ({ key: { garbage }, via })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom('authorization', 'api-key', 'Api-Key'),
          fc.oneof(
            headerText,
            fc.constantFrom('Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'Bearer a b', 'Token x', 'bearer\tx'),
          ),
        )
        .map(([header, value]): Credential => ({ header, value })),
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Routes

const DOCUMENT_ENDPOINTS = [
  '/v1/documents/extract',
  '/v1/documents/parse',
  '/v1/documents/split',
  '/v1/documents/classify',
];
const OTHER_ENDPOINTS = BUILTIN_ENDPOINTS.filter((e) => !DOCUMENT_ENDPOINTS.includes(e));
const endpointName = fc.oneof(
  fc.constantFrom(...BUILTIN_ENDPOINTS),
  fc.constantFrom(...BUILTIN_ENDPOINTS).map((e) => e.slice(4)),
  fc.constantFrom(...BUILTIN_ENDPOINTS).map((e) => e.slice(3)),
);

const smallKey = fc.oneof(fc.constantFrom('batch_id', 'a', 'k'), fc.string({ maxLength: 10 }));
const metadata = fc.dictionary(smallKey, fc.string({ maxLength: 12 }), { maxKeys: 4 });
/**
 * Valid data URLs, mostly past the fuzz app's offload threshold (256 bytes) so that valid creates
 * and completions write objects; the odd and broken ones come from `dataUrl` through mutations.
 */
const validDataUrl = fc.oneof(
  { weight: 1, arbitrary: fc.constant('data:text/plain;base64,aGVsbG8=') },
  {
    weight: 3,
    arbitrary: fc
      .uint8Array({ minLength: 200, maxLength: 3000 })
      .map((bytes) => `data:application/pdf;base64,${base64Of(bytes)}`),
  },
  { weight: 1, arbitrary: fc.constant('https://example.com/a.pdf') },
);
const document = fc.record({ filename: fc.constantFrom('a.txt', 'doc.pdf', 'é.txt'), url: validDataUrl });
/** Text past the fuzz app's INLINE_DOCUMENT_LIMIT_BYTES (4 KiB): the whole document goes to storage. */
const bigText = fc.integer({ min: 4100, max: 9000 }).map((n) => 'x'.repeat(n));
const jsonObject = fc.dictionary(
  smallKey,
  fc.oneof({ weight: 6, arbitrary: fc.jsonValue({ maxDepth: 2 }) }, { weight: 1, arbitrary: bigText }),
  { maxKeys: 4 },
);

const createBody = fc.oneof(
  fc.record(
    {
      endpoint: endpointName.filter((e) => DOCUMENT_ENDPOINTS.some((d) => d.endsWith(e))),
      request: fc.oneof(
        fc.record({ document }),
        fc.record({ documents: fc.array(document, { minLength: 1, maxLength: 3 }) }),
      ),
      metadata,
      max_attempts: fc.integer({ min: 1, max: 10 }),
    },
    { requiredKeys: ['endpoint', 'request'] },
  ),
  fc.record(
    { endpoint: fc.constantFrom(...OTHER_ENDPOINTS), request: jsonObject, metadata },
    { requiredKeys: ['endpoint', 'request'] },
  ),
);

const idempotencyKey = fc.oneof(
  fc.constantFrom('key-1', 'key-2', 'key-3'),
  fc.constantFrom('', ' ', 'a b', 'é', 'x'.repeat(255), 'x'.repeat(256), '\tk'),
  headerText,
);

/** Values at the bounds of the create body's fields. */
const createBounds = fc.oneof(
  fc.integer({ min: -2, max: 12 }),
  fc.constantFrom('x'.repeat(200), 'x'.repeat(201), 'é'.repeat(64), '😀'.repeat(512), '😀'.repeat(513)),
  endpointName,
  fc.constantFrom(
    '/v1/',
    '/v1',
    '/',
    'v1/documents/extract',
    '/v1/v1/documents/extract',
    '/V1/documents/extract',
  ),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.constant('v'), { minKeys: 15, maxKeys: 18 }),
);

const createRequest: fc.Arbitrary<RequestSpec> = fc
  .record({
    body: nearlyValid(
      createBody,
      [
        ['endpoint'],
        ['request'],
        ['request', 'document'],
        ['request', 'document', 'url'],
        ['request', 'document', 'filename'],
        ['request', 'documents'],
        ['request', 'documents', '0'],
        ['request', 'documents', '0', 'url'],
        ['request', 'x'],
        ['metadata'],
        ['metadata', 'k'],
        ['metadata', 'x'.repeat(65)],
        ['max_attempts'],
      ],
      createBounds,
    ),
    idempotency: oneIn(3, idempotencyKey),
    credential: credential('client'),
    headers: extraHeaders,
    query: queryFor({}),
    contentType: oneIn(8, fc.constantFrom(...CONTENT_TYPES)),
  })
  .map(
    ({ body, idempotency, credential, headers, query, contentType }): RequestSpec => ({
      method: 'POST',
      path: ['/v1/jobs'],
      query,
      headers: idempotency === undefined ? headers : [['idempotency-key', idempotency], ...headers],
      credential,
      body: { kind: 'json', value: body },
      contentType,
    }),
  );

/** A job id for the path: a job in some state, or an id that is not one. */
const jobIdSegment: fc.Arbitrary<string | SlotValue> = fc.oneof(
  { weight: 8, arbitrary: jobSlot() },
  {
    weight: 2,
    arbitrary: fc.stringMatching(/^job_[A-Za-z0-9_-]{21}$/),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'nope',
      'job_',
      'JOB_V1StGXR8_Z5jdHi6B-myT',
      'job_V1StGXR8_Z5jdHi6B-my',
      'job_V1StGXR8_Z5jdHi6B-myTT',
      'job_V1StGXR8_Z5jdHi6B-my%54',
      '%6Aob_V1StGXR8_Z5jdHi6B-myT',
      'job_V1StGXR8_Z5jdHi6B-my%00',
      'job_V1StGXR8_Z5jdHi6B-my%FF',
      'job_V1StGXR8_Z5jdHi6B-my%ED%A0%80',
      'job_V1StGXR8_Z5jdHi6B-my%',
      'job_V1StGXR8_Z5jdHi6B-my%2F',
      '%2e%2e',
      '..',
      '.',
      '%',
      '%zz',
      '%C0%AF',
      'é',
      '😀',
      'a'.repeat(100),
      'a'.repeat(101),
      'job_V1StGXR8_Z5jdHi6B-myT;x',
    ),
  },
  { weight: 1, arbitrary: nastyString.map(percentEncode) },
  { weight: 1, arbitrary: longString.map(percentEncode) },
);

const statusText = fc.constantFrom(...JOB_STATUSES);
const day = fc
  .date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2200-12-31T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString().slice(0, 10));
const dayText = fc.oneof(
  day,
  fc.constantFrom(
    '0000-01-01',
    '0001-01-01',
    '9999-12-31',
    '1970-01-01',
    '2024-02-29',
    '2023-02-29',
    '2024-13-01',
    '2024-00-10',
    '2024-1-1',
    '20240101',
    '2024-01-01T00:00:00Z',
    '٢٠٢٤-٠١-٠١',
  ),
);
const queryBoolean = fc.constantFrom('true', 'false', '1', '0', 'TRUE', 'yes', '');
const metadataText = fc.oneof(
  metadata.map((m) => JSON.stringify(m)),
  fc.constantFrom(
    '{}',
    '[]',
    'null',
    '"x"',
    '1',
    '{',
    '{"a":1}',
    '{"a":null}',
    '{"a":{"b":"c"}}',
    '{"a":"\\u0000"}',
    '{"a":"\\ud800"}',
    '{"\\ud800":"x"}',
    '{"__proto__":"x"}',
    '{"a":"b","a":"c"}',
    `{"a":"${'x'.repeat(16_400)}"}`,
    `${'['.repeat(3000)}${']'.repeat(3000)}`,
    `{"a":${'{"a":'.repeat(200)}"x"${'}'.repeat(200)}}`,
  ),
);

const routeParam = (suffix: string) => (id: string | SlotValue) => ['/v1/jobs/', id, suffix];

const clientGet = (
  suffix: string,
  params: Record<string, fc.Arbitrary<string | SlotValue>>,
  headers: fc.Arbitrary<[string, string][]> = fc.constant([]),
): fc.Arbitrary<RequestSpec> =>
  fc
    .record({
      id: jobIdSegment,
      query: queryFor(params),
      credential: credential('client'),
      headers: fc.tuple(headers, extraHeaders).map(([a, b]) => [...a, ...b]),
      method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD'),
    })
    .map(({ id, query, credential, headers, method }) => ({
      method,
      path: routeParam(suffix)(id),
      query,
      headers,
      credential,
      body: { kind: 'none' },
    }));

const retrieveRequest = clientGet('', { include_request: queryBoolean, include_response: queryBoolean });

const ifNoneMatch = oneIn(
  2,
  fc.oneof(fc.constantFrom('*', '"x"', 'W/"x"', '"a", "b"', ',', '', 'W/'), headerText),
).map((value): [string, string][] => (value === undefined ? [] : [['if-none-match', value]]));

// wait_seconds: a real wait would hold the test, so a positive one is only sent where the server
// answers at once (a terminal job, or none of the caller's); the request builder drops it elsewhere.
const statusRequest = clientGet(
  '/status',
  { wait_seconds: fc.oneof(fc.constantFrom('0', '-0', '00'), fc.integer({ min: 1, max: 60 }).map(String)) },
  ifNoneMatch,
);

const attemptsRequest = clientGet('/attempts', {});

const listRequest: fc.Arbitrary<RequestSpec> = fc
  .record({
    query: queryFor({
      limit: fc.integer({ min: 1, max: 100 }).map(String),
      order: fc.constantFrom('asc', 'desc'),
      after: jobSlot(),
      before: jobSlot(),
      status: statusText,
      endpoint: endpointName,
      metadata: metadataText,
      from_date: dayText,
      to_date: dayText,
      include_request: queryBoolean,
      include_response: queryBoolean,
    }),
    credential: credential('client'),
    headers: extraHeaders,
  })
  .map(({ query, credential, headers }) => ({
    method: 'GET',
    path: ['/v1/jobs'],
    query,
    headers,
    credential,
    body: { kind: 'none' },
  }));

/** cancel and retry: no body expected, whatever arrives is still parsed. */
const transitionRequest: fc.Arbitrary<RequestSpec> = fc
  .record({
    action: fc.constantFrom('/cancel', '/retry'),
    id: jobIdSegment,
    query: queryFor({}),
    credential: credential('client'),
    headers: extraHeaders,
    body: fc.oneof(
      { weight: 4, arbitrary: fc.constant<Body>({ kind: 'none' }) },
      { weight: 1, arbitrary: wildBody },
    ),
    contentType: oneIn(3, fc.constantFrom(...CONTENT_TYPES)),
  })
  .map(({ action, id, query, credential, headers, body, contentType }) => ({
    method: 'POST',
    path: routeParam(action)(id),
    query,
    headers,
    credential,
    body,
    contentType,
  }));

const healthRequest: fc.Arbitrary<RequestSpec> = fc
  .record({
    path: fc.constantFrom('/healthz', '/readyz', '/openapi.json'),
    query: queryFor({}),
    credential: credential('client'),
    headers: extraHeaders,
    method: fc.constantFrom('GET', 'HEAD'),
  })
  .map(({ path, query, credential, headers, method }) => ({
    method,
    path: [path],
    query,
    headers,
    credential,
    body: { kind: 'none' },
  }));

/** Requests to every client route (and the health routes), nearly valid most of the time. */
export const clientRequest: fc.Arbitrary<RequestSpec> = fc.oneof(
  { weight: 6, arbitrary: createRequest },
  { weight: 3, arbitrary: retrieveRequest },
  { weight: 2, arbitrary: statusRequest },
  { weight: 4, arbitrary: listRequest },
  { weight: 3, arbitrary: transitionRequest },
  { weight: 2, arbitrary: attemptsRequest },
  { weight: 1, arbitrary: healthRequest },
);

// Worker routes

const leaseToken: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 10, arbitrary: leaseSlot.filter((s) => s.ref.name === 'own') },
  { weight: 4, arbitrary: leaseSlot },
  { weight: 1, arbitrary: fc.uuid() },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      'x',
      '00000000-0000-0000-0000-000000000000',
      '{00000000-0000-0000-0000-000000000000}',
    ),
  },
);

const workerId = fc.oneof(
  fc.constantFrom('worker-1', 'vm:1:abc'),
  fc.string({ minLength: 1, maxLength: 20 }),
);
const endpointsList = fc.array(endpointName, { minLength: 1, maxLength: 4 });
const problem = fc.record(
  {
    code: fc.constantFrom('bad_input', 'timeout', 'x'),
    message: fc.string({ maxLength: 30 }),
    details: fc.oneof(fc.constant(null), jsonObject),
  },
  { requiredKeys: ['code', 'message'] },
);

const claimBody = nearlyValid(
  fc.record(
    {
      worker_id: workerId,
      limit: fc.integer({ min: 1, max: 3 }),
      endpoints: endpointsList,
      lease_seconds: fc.integer({ min: 1, max: 600 }),
      wait_seconds: fc.constant(0),
    },
    { requiredKeys: ['worker_id', 'wait_seconds'] },
  ),
  [['worker_id'], ['limit'], ['endpoints'], ['endpoints', '0'], ['lease_seconds'], ['wait_seconds']],
  fc.oneof(fc.integer(), fc.double(), nastyString, fc.constantFrom(-1, 0, 31, 101, 601, 3601)),
);

const heartbeatBody = nearlyValid(
  fc.record(
    { lease_token: leaseToken, lease_seconds: fc.integer({ min: 1, max: 600 }) },
    { requiredKeys: ['lease_token'] },
  ),
  [['lease_token'], ['lease_seconds']],
  fc.constantFrom(0, -1, 601, 1e9, 1.5, '10'),
);

const completeBody = nearlyValid(
  fc.record(
    {
      lease_token: leaseToken,
      response: fc.record({
        status_code: fc.integer({ min: 100, max: 599 }),
        body: fc.oneof(
          jsonObject,
          fc.record({ document }),
          fc.record({ documents: fc.array(document, { maxLength: 3 }), text: bigText }),
        ),
      }),
      warnings: fc.array(problem, { maxLength: 3 }),
    },
    { requiredKeys: ['lease_token', 'response'] },
  ),
  [
    ['lease_token'],
    ['response'],
    ['response', 'status_code'],
    ['response', 'body'],
    ['response', 'body', 'k'],
    ['response', 'body', 'document', 'url'],
    ['warnings'],
    ['warnings', '0'],
    ['warnings', '0', 'code'],
    ['warnings', '0', 'details'],
  ],
);

const failBody = nearlyValid(
  fc.record({
    lease_token: leaseToken,
    error: problem,
    retryable: fc.boolean(),
  }),
  [
    ['lease_token'],
    ['error'],
    ['error', 'code'],
    ['error', 'message'],
    ['error', 'details'],
    ['error', 'details', 'k'],
    ['retryable'],
  ],
  fc.oneof(fc.constantFrom('x'.repeat(101), 'x'.repeat(10_001), 'true', 0, 1), nastyString),
);

const tokenOnlyBody = nearlyValid(fc.record({ lease_token: leaseToken }), [['lease_token']]);

/** A job for a report: mostly a running one, so that a token can hold its lease. */
const reportJob: fc.Arbitrary<string | SlotValue> = fc.oneof(
  { weight: 8, arbitrary: jobSlot(['running', 'cancelling']) },
  { weight: 3, arbitrary: jobIdSegment },
);

const workerPost = (
  path: (id: string | SlotValue) => (string | SlotValue)[],
  body: fc.Arbitrary<unknown>,
): fc.Arbitrary<RequestSpec> =>
  fc
    .record({
      id: reportJob,
      body,
      query: queryFor({}),
      credential: credential('worker'),
      headers: extraHeaders,
      contentType: oneIn(10, fc.constantFrom(...CONTENT_TYPES)),
    })
    .map(({ id, body, query, credential, headers, contentType }) => ({
      method: 'POST',
      path: path(id),
      query,
      headers,
      credential,
      body: { kind: 'json', value: body },
      contentType,
    }));

const report = (name: string) => (id: string | SlotValue) => ['/v1/worker/jobs/', id, `/${name}`];

/** Requests to every worker route, nearly valid most of the time. */
export const workerRequest: fc.Arbitrary<RequestSpec> = fc.oneof(
  { weight: 3, arbitrary: workerPost(() => ['/v1/worker/claim'], claimBody) },
  { weight: 3, arbitrary: workerPost(report('heartbeat'), heartbeatBody) },
  { weight: 5, arbitrary: workerPost(report('complete'), completeBody) },
  { weight: 4, arbitrary: workerPost(report('fail'), failBody) },
  { weight: 2, arbitrary: workerPost(report('cancelled'), tokenOnlyBody) },
  { weight: 2, arbitrary: workerPost(report('release'), tokenOnlyBody) },
);

// Wild requests: any method, any route shape, any body, any content type

const ROUTE_SHAPES: ((id: string | SlotValue) => (string | SlotValue)[])[] = [
  () => ['/v1/jobs'],
  routeParam(''),
  routeParam('/status'),
  routeParam('/cancel'),
  routeParam('/retry'),
  routeParam('/attempts'),
  () => ['/v1/worker/claim'],
  report('heartbeat'),
  report('complete'),
  report('fail'),
  report('cancelled'),
  report('release'),
  () => ['/healthz'],
  () => ['/readyz'],
  () => ['/openapi.json'],
  () => ['/'],
  () => ['/v1'],
  () => ['/v1/'],
  () => ['/v1/jobs/'],
  () => ['/v1//jobs'],
  () => ['/V1/JOBS'],
  () => ['/v1/worker'],
  () => ['/v1/jobs/', 'job_V1StGXR8_Z5jdHi6B-myT', '/status/'],
  (id) => ['/v1/jobs/', id, '/', id],
  (id) => ['/v1/worker/jobs/', id],
];

const wildPath = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.tuple(fc.nat(ROUTE_SHAPES.length - 1), jobIdSegment).map(([i, id]) => ROUTE_SHAPES[i](id)),
  },
  {
    weight: 2,
    arbitrary: fc
      .array(
        fc.oneof(queryGarbage, nastyString.map(percentEncode), fc.constantFrom('v1', 'jobs', '..', '')),
        {
          maxLength: 5,
        },
      )
      .map((segments) => [`/${segments.join('/')}`]),
  },
);

const wildRawQuery = oneIn(
  2,
  fc
    .array(
      fc.tuple(
        fc.oneof(
          fc.constantFrom(
            'access_token',
            'limit',
            'include_request',
            'metadata',
            'after',
            'wait_seconds',
            '',
          ),
          queryGarbage,
        ),
        fc.oneof(queryGarbage, numberText.map(percentEncode), nastyString.map(percentEncode)),
      ),
      { maxLength: 4 },
    )
    .map((pairs) => pairs.map(([name, value]) => `${name}=${value}`).join('&')),
);

const wildHeaders: fc.Arbitrary<[string, string][]> = fc
  .tuple(
    extraHeaders,
    fc.array(
      fc.oneof(
        fc.tuple(fc.constant('content-length'), fc.constantFrom('0', '1', '5', '-1', 'abc', '999999999')),
        fc.tuple(fc.constant('transfer-encoding'), fc.constantFrom('chunked', 'gzip', 'identity')),
        fc.tuple(fc.constant('content-encoding'), fc.constantFrom('gzip', 'deflate', 'br', 'x')),
        fc.tuple(fc.constant('idempotency-key'), idempotencyKey),
        fc.tuple(fc.constant('if-none-match'), headerText),
      ),
      { maxLength: 2 },
    ),
  )
  .map(([a, b]) => [...a, ...b]);

/** Requests of any shape: method, path, query, headers, body and content type all arbitrary. */
export const wildRequest: fc.Arbitrary<RequestSpec> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'),
  path: wildPath,
  query: queryFor({ limit: numberText, include_request: queryBoolean, wait_seconds: fc.constant('0') }),
  rawQuery: wildRawQuery,
  headers: wildHeaders,
  credential: fc.oneof(credential('client'), credential('worker'), credential('admin')),
  body: wildBody,
  contentType: oneIn(2, fc.constantFrom(...CONTENT_TYPES)),
});

// ---------------------------------------------------------------------------------------------
// From a spec to app.inject options

export interface Resolved {
  slot: (slot: SlotValue) => string;
  key: (name: KeyName) => string;
  /** The server would answer a status wait at once: a positive wait_seconds may be sent. */
  waitAnswersAtOnce: boolean;
}

export interface InjectRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
}

/**
 * Would the server take this query pair as a positive wait_seconds? Such a pair is dropped unless
 * the server answers at once anyway: a real wait would hold the test for seconds.
 */
function holdsAWait(pair: string): boolean {
  const value = querystring.parse(pair).wait_seconds;
  return typeof value === 'string' && /^-?\d+$/.test(value) && Number(value) > 0 && Number(value) <= 60;
}

/** The same for a claim: a positive wait_seconds becomes 0, since no job may be there to claim. */
const bodyHoldsAWait = (value: unknown) => {
  if (value === null || typeof value !== 'object') return false;
  const wait = (value as Record<string, unknown>).wait_seconds;
  return typeof wait === 'number' && Number.isInteger(wait) && wait > 0 && wait <= 30;
};

export function toInjectRequest(spec: RequestSpec, resolved: Resolved): InjectRequest {
  const pathText = spec.path.map((part) => (isSlot(part) ? resolved.slot(part) : part)).join('');
  const query: string[] = spec.query.map(({ name, value, encode }) => {
    const text = isSlot(value) ? resolved.slot(value) : value;
    return `${percentEncode(name)}=${encode ? percentEncode(text) : text}`;
  });
  const headers: Record<string, string> = {};
  for (const [name, value] of spec.headers) headers[name.toLowerCase()] = value;

  const { credential } = spec;
  if ('header' in credential) headers[credential.header.toLowerCase()] = credential.value;
  else {
    const place = (via: CredentialPlace, key: string) => {
      if (via === 'api-key') headers['api-key'] = key;
      else if (via === 'bearer') headers.authorization = `Bearer ${key}`;
      else if (via === 'bearer-lower') headers.authorization = `bearer ${key}`;
      else if (via === 'bearer-padded') headers.authorization = `Bearer   ${key}  `;
      else query.push(`access_token=${percentEncode(key)}`);
    };
    const key = credential.key;
    if (key !== 'none') place(credential.via, typeof key === 'string' ? resolved.key(key) : key.garbage);
    if (credential.decoy && credential.decoy !== credential.via) place(credential.decoy, 'sk_wrong');
  }
  if (spec.rawQuery !== undefined) query.push(spec.rawQuery);
  const pairs = query
    .join('&')
    .split('&')
    .filter((pair) => resolved.waitAnswersAtOnce || !holdsAWait(pair));
  const url = query.length ? `${pathText}?${pairs.join('&')}` : pathText;

  let payload: string | Buffer | undefined;
  const { body } = spec;
  if (body.kind === 'json') {
    const value = bodyHoldsAWait(body.value)
      ? { ...(body.value as Record<string, unknown>), wait_seconds: 0 }
      : body.value;
    payload = toJsonText(value, resolved.slot);
    headers['content-type'] = 'application/json';
  } else if (body.kind === 'text') payload = body.text;
  else if (body.kind === 'bytes') payload = Buffer.from(body.bytes);
  if (spec.contentType !== undefined) headers['content-type'] = spec.contentType;
  return { method: spec.method, url, headers, payload };
}
