import path from 'node:path';
import { type StaticDecode, Type } from '@sinclair/typebox';
import { TransformDecodeError, Value } from '@sinclair/typebox/value';

/**
 * Every environment variable the server reads, with its default. This schema is the single
 * source for validation, defaults, the `Config` type and the README's configuration table.
 */
const Int = (options: { default: number; minimum: number; maximum?: number; description: string }) =>
  Type.Integer(options);

export const EnvSchema = Type.Object({
  PORT: Int({
    default: 8080,
    minimum: 0,
    maximum: 65535,
    description: 'TCP port the HTTP server listens on.',
  }),
  HOST: Type.String({ default: '0.0.0.0', minLength: 1, description: 'Address the HTTP server binds.' }),
  BASE_PATH: Type.String({
    default: '',
    pattern: '^(|/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-])$',
    description: 'Path prefix every route is served under, for gateways that forward one (e.g. /jobs-api).',
  }),
  TRUST_PROXY: Type.Transform(
    Type.String({
      default: 'false',
      description:
        'Honour X-Forwarded-For/-Proto/-Host: `false`, `true`, a hop count, or a comma-separated list of proxy addresses/CIDRs.',
    }),
  )
    .Decode(parseTrustProxy)
    .Encode(String),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info', description: 'pino log level.' },
  ),
  LOG_REQUESTS: Type.Boolean({ default: true, description: 'Log one line per request and response.' }),
  DATA_DIR: Type.Transform(
    Type.String({
      default: '.data',
      minLength: 1,
      description: 'Folder for the embedded PostgreSQL cluster and the default file artifact store.',
    }),
  )
    .Decode((dir) => path.resolve(dir))
    .Encode((dir) => dir),
  DATABASE_URL: Type.Optional(
    Type.String({
      pattern: '^postgres(ql)?://',
      description:
        'PostgreSQL connection URL. Unset: the server starts its own cluster under DATA_DIR/postgres.',
    }),
  ),
  DATABASE_POOL_SIZE: Int({ default: 10, minimum: 1, maximum: 200, description: 'Connections in the pool.' }),
  DATABASE_PREPARED_STATEMENTS: Type.Boolean({
    default: true,
    description:
      'Run queries as named prepared statements (faster); set false behind a pooler that cannot keep them (PgBouncer in transaction mode).',
  }),
  DATABASE_CONNECT_TIMEOUT_MS: Int({
    default: 5000,
    minimum: 100,
    description:
      'Longest wait for a database connection (a new one, or a free one of the pool); past it the request answers 503.',
  }),
  DATABASE_STATEMENT_TIMEOUT_MS: Int({
    default: 30000,
    minimum: 100,
    description:
      'Longest a statement may run (statement_timeout); the server waits one second more for an answer before it gives up on the connection. Past it the request answers 503.',
  }),
  EMBEDDED_PG_PORT: Int({
    default: 54329,
    minimum: 1,
    maximum: 65535,
    description: 'Port of the embedded PostgreSQL cluster (127.0.0.1 only).',
  }),
  PG_BINDIR: Type.Optional(
    Type.String({ minLength: 1, description: 'Folder holding initdb/pg_ctl for the embedded cluster.' }),
  ),
  STORAGE_URL: Type.Optional(
    Type.String({
      pattern: '^(gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?|file://.+)$',
      description:
        'Where artifacts go: `gs://bucket/prefix` or `file:///dir`. Unset: file://DATA_DIR/artifacts.',
    }),
  ),
  GCS_API_ENDPOINT: Type.Optional(
    Type.String({
      pattern: '^https?://',
      description: 'GCS JSON API endpoint override, for emulators such as fake-gcs-server.',
    }),
  ),
  GCS_PROJECT_ID: Type.Optional(Type.String({ minLength: 1, description: 'Google Cloud project id.' })),
  API_KEY_CACHE_TTL_SECONDS: Int({
    default: 10,
    minimum: 0,
    maximum: 3600,
    description:
      'How long a verified API key is cached in memory; a revoked key stops working within this time.',
  }),
  JOB_RETENTION_SECONDS: Int({
    default: 604800,
    minimum: 60,
    description: 'Lifetime of a job: expires_at = created_at + this.',
  }),
  RESTORE_CONCURRENCY: Int({
    default: 8,
    minimum: 1,
    maximum: 256,
    description: 'Artifacts read from storage at once per restore.',
  }),
  RESTORE_TIMEOUT_MS: Int({
    default: 10000,
    minimum: 1,
    description:
      'Time an answer (a retrieve, a list page, a claim) may spend reading artifacts back; one not read by then is null and a warning says why.',
  }),
  OFFLOAD_THRESHOLD_BYTES: Int({
    default: 16384,
    minimum: 0,
    description:
      'Data URLs in a request or response longer than this (in bytes) are written to object storage.',
  }),
  OFFLOAD_CONCURRENCY: Int({
    default: 8,
    minimum: 1,
    maximum: 256,
    description: 'Artifacts written to storage at once per create or completion.',
  }),
  STORAGE_WRITE_TIMEOUT_MS: Int({
    default: 30000,
    minimum: 1,
    description:
      'Time limit for writing one artifact; past it the create or completion answers 503 and nothing is stored.',
  }),
  INLINE_DOCUMENT_LIMIT_BYTES: Int({
    default: 262144,
    minimum: 0,
    description:
      'A request or response still larger than this after offloading is stored whole in object storage.',
  }),
  BODY_LIMIT_BYTES: Int({
    default: 52428800,
    minimum: 1024,
    description: 'Largest accepted request body; larger ones answer 413.',
  }),
  BODY_MAX_DEPTH: Int({
    default: 128,
    minimum: 8,
    maximum: 1000,
    description: 'Deepest nesting of arrays and objects accepted in a JSON body; deeper ones answer 400.',
  }),
  REQUEST_TIMEOUT_SECONDS: Int({
    default: 60,
    minimum: 1,
    maximum: 3600,
    description:
      'Time a client has to send a whole request, body included; a request still incomplete after it answers 408.',
  }),
  EXPIRY_SWEEP_INTERVAL_SECONDS: Int({
    default: 60,
    minimum: 1,
    description: 'How often expired jobs are marked and their stored objects deleted.',
  }),
  DEFAULT_MAX_ATTEMPTS: Int({
    default: 3,
    minimum: 1,
    maximum: 100,
    description: 'Executions a job gets when its create request does not say (at most MAX_ATTEMPTS_LIMIT).',
  }),
  MAX_ATTEMPTS_LIMIT: Int({
    default: 10,
    minimum: 1,
    maximum: 100,
    description: 'Largest max_attempts a create request may ask for.',
  }),
  LEASE_SECONDS: Int({
    default: 60,
    minimum: 1,
    description: 'Lease a worker gets on a claimed job when it does not ask for one; heartbeats renew it.',
  }),
  MAX_LEASE_SECONDS: Int({
    default: 3600,
    minimum: 1,
    maximum: 86400,
    description: 'Longest lease a worker may ask for in a claim or heartbeat.',
  }),
  RETRY_BASE_SECONDS: Int({
    default: 10,
    minimum: 1,
    description: 'Backoff before the second attempt of a failed job; doubles with each further attempt.',
  }),
  RETRY_MAX_SECONDS: Int({
    default: 3600,
    minimum: 1,
    description: 'Upper bound of the retry backoff.',
  }),
  REAPER_INTERVAL_SECONDS: Int({
    default: 10,
    minimum: 1,
    maximum: 3600,
    description: 'How often expired worker leases are looked for and their jobs requeued or failed.',
  }),
  REAPER_BATCH_SIZE: Int({
    default: 100,
    minimum: 1,
    maximum: 10000,
    description: 'Expired leases handled per transaction by the lease reaper.',
  }),
  EXTRA_ENDPOINTS: Type.Transform(
    Type.String({
      default: '',
      pattern: '^(|(/[A-Za-z0-9._~/-]+)(,/[A-Za-z0-9._~/-]+)*)$',
      description:
        'Comma-separated endpoints accepted in addition to the built-in list (e.g. /v1/custom/run).',
    }),
  )
    .Decode((list) => (list === '' ? [] : list.split(',')))
    .Encode((list) => list.join(',')),
});

export type Env = StaticDecode<typeof EnvSchema>;

/** `OFFLOAD_THRESHOLD_BYTES` -> `offloadThresholdBytes`: the one renaming, at the boundary. */
type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Lowercase<Head>}${Capitalize<CamelCase<Tail>>}`
  : Lowercase<S>;

/**
 * The settings as the code reads them: every variable under its camel-cased name, decoded
 * (`trustProxy` parsed, `extraEndpoints` a list, `dataDir` absolute) and with its default.
 * `storageUrl` always has a value: unset, it is the file store under `dataDir`.
 */
export type Config = { readonly [K in keyof Env as CamelCase<K>]: Env[K] } & { readonly storageUrl: string };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function parseTrustProxy(raw: string): boolean | number | string[] {
  const value = raw.trim().toLowerCase();
  if (value === 'false' || value === '0' || value === '') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  const list = raw.split(',').map((s) => s.trim());
  if (list.some((s) => !/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(s))) {
    throw new ConfigError(
      'TRUST_PROXY: expected false, true, a hop count, or a comma-separated list of IP addresses/CIDRs',
    );
  }
  return list;
}

const camelCase = (name: string) =>
  name.toLowerCase().replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());

function decode(raw: Record<string, unknown>): Env {
  try {
    return Value.Decode(EnvSchema, raw);
  } catch (error) {
    if (error instanceof TransformDecodeError && error.error instanceof ConfigError) throw error.error;
    throw error;
  }
}

/** Reads, converts and validates the environment once; the result is frozen. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const known = Object.keys(EnvSchema.properties);
  // An empty variable means "not set", as it does for most servers' users.
  const raw: Record<string, unknown> = {};
  for (const name of known) {
    const value = env[name];
    if (value !== undefined && value !== '') raw[name] = value;
  }
  const converted = Value.Default(EnvSchema, Value.Convert(EnvSchema, raw)) as Record<string, unknown>;
  const errors = [...Value.Errors(EnvSchema, converted)];
  if (errors.length > 0) {
    const messages = errors.map((e) => {
      const name = e.path.replace(/^\//, '');
      const given = name in raw ? ` (got ${JSON.stringify(raw[name])})` : '';
      return `${name}: ${e.message}${given}`;
    });
    throw new ConfigError(`invalid configuration: ${[...new Set(messages)].join('; ')}`);
  }
  const e = decode(converted);
  const orderings: [string, number, string, number][] = [
    ['DEFAULT_MAX_ATTEMPTS', e.DEFAULT_MAX_ATTEMPTS, 'MAX_ATTEMPTS_LIMIT', e.MAX_ATTEMPTS_LIMIT],
    ['LEASE_SECONDS', e.LEASE_SECONDS, 'MAX_LEASE_SECONDS', e.MAX_LEASE_SECONDS],
    ['RETRY_BASE_SECONDS', e.RETRY_BASE_SECONDS, 'RETRY_MAX_SECONDS', e.RETRY_MAX_SECONDS],
  ];
  for (const [lowName, low, highName, high] of orderings) {
    if (low > high) {
      throw new ConfigError(
        `invalid configuration: ${lowName} (${low}) must not exceed ${highName} (${high})`,
      );
    }
  }
  const decoded = e as Record<string, unknown>;
  const config = Object.fromEntries(known.map((name) => [camelCase(name), decoded[name]]));
  config.storageUrl ??= `file://${path.join(e.DATA_DIR, 'artifacts')}`;
  return Object.freeze(config) as Config;
}
