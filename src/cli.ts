import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { type App, buildApp } from './app.js';
import { insertApiKey, listApiKeys, revokeApiKey } from './auth/api-key-repository.js';
import { generateApiKey } from './auth/api-keys.js';
import {
  findOrganization,
  insertOrganization,
  listOrganizations,
  setMaxInFlight,
} from './auth/organization-repository.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { openProcessDatabase } from './db/process-database.js';
import { API_KEY_SCOPES, type ApiKeyScope } from './domain/api-key-scopes.js';
import { normaliseEndpoint } from './domain/endpoints.js';
import { createJob } from './jobs/job-creator.js';

const USAGE = `Usage: npm run cli -- <command> [options]

  quickstart                          create an organization "default" with a client key and a worker key
                                      (printed once)
  org create <name>                   create an organization; prints its id
  org list                            list organizations
  key create --org <id> [--scope client|worker|admin] [--name <text>]
                                      create an API key; the key is printed once and never again
  key create --scope fleet [--name <text>]
                                      create a fleet key (the operator's workers: claims and reports
                                      the jobs of every organization, in turn); printed once
  org set <org_id> --max-in-flight <n|none>
                                      at most n of the organization's jobs in progress at once
  key list [--org <id>]               list keys (display prefix, scope, revoked)
  key revoke <key_id>                 revoke a key (effective within API_KEY_CACHE_TTL_SECONDS)
  migrate                             apply pending database migrations
  seed-job --org <id> --file <request.json> [--endpoint /v1/documents/extract] [--metadata '{"k":"v"}']
                                      create a queued job from a JSON request, offloading large
                                      data URLs to object storage exactly as the API does

The CLI uses the same configuration as the server (DATABASE_URL, STORAGE_URL, DATA_DIR, ...).`;

class UsageError extends Error {}

function print(value: unknown) {
  process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}\n`);
}

function scopeOf(value: string | undefined): ApiKeyScope {
  const scope = value ?? 'client';
  if (!(API_KEY_SCOPES as readonly string[]).includes(scope)) {
    throw new UsageError(`--scope must be one of ${API_KEY_SCOPES.join(', ')}`);
  }
  return scope as ApiKeyScope;
}

async function createKey(app: App, organizationId: string | null, scope: ApiKeyScope, name: string | null) {
  if (organizationId !== null && !(await findOrganization(app.db, organizationId))) {
    throw new UsageError(`no organization with id ${organizationId} (see: org list)`);
  }
  const { key, hash, displayPrefix } = generateApiKey();
  const row = await insertApiKey(app.db, { organizationId, name, scope, keyHash: hash, displayPrefix });
  return { ...row, key };
}

async function run(app: App, config: Config, args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      org: { type: 'string' },
      scope: { type: 'string' },
      name: { type: 'string' },
      file: { type: 'string' },
      endpoint: { type: 'string' },
      metadata: { type: 'string' },
      'max-in-flight': { type: 'string' },
    },
  });
  const [group, action, arg] = positionals;
  const command = [group, action].filter(Boolean).join(' ');
  switch (group === 'quickstart' || group === 'migrate' || group === 'seed-job' ? group : command) {
    case 'migrate':
      print('migrations applied');
      return;
    case 'quickstart': {
      const org = await insertOrganization(app.db, 'default');
      const client = await createKey(app, org.id, 'client', 'quickstart client');
      const worker = await createKey(app, org.id, 'worker', 'quickstart worker');
      const base = `http://localhost:${config.port}${config.basePath}`;
      print(
        [
          `organization: ${org.id}`,
          `client key (creates and reads jobs; shown once, keep it): ${client.key}`,
          `worker key (claims and completes jobs; shown once, keep it): ${worker.key}`,
          '',
          'Try it:',
          `  curl -s ${base}/v1/jobs -H "Api-Key: ${client.key}"`,
        ].join('\n'),
      );
      return;
    }
    case 'org create': {
      if (!action || !arg) throw new UsageError('org create needs a name');
      print(await insertOrganization(app.db, arg));
      return;
    }
    case 'org list':
      print(await listOrganizations(app.db));
      return;
    case 'key create': {
      const scope = scopeOf(values.scope);
      if (scope === 'fleet') {
        if (values.org) throw new UsageError('a fleet key belongs to no organization: leave out --org');
        print(await createKey(app, null, scope, values.name ?? null));
        return;
      }
      if (!values.org) throw new UsageError('key create needs --org <organization id> (or --scope fleet)');
      print(await createKey(app, values.org, scope, values.name ?? null));
      return;
    }
    case 'org set': {
      const limit = values['max-in-flight'];
      if (!arg || limit === undefined)
        throw new UsageError('org set needs <org_id> --max-in-flight <n|none>');
      const maxInFlight = limit === 'none' ? null : Number(limit);
      if (maxInFlight !== null && !(Number.isInteger(maxInFlight) && maxInFlight >= 1)) {
        throw new UsageError('--max-in-flight must be a whole number of at least 1, or none');
      }
      const org = await setMaxInFlight(app.db, arg, maxInFlight);
      if (!org) throw new UsageError(`no organization with id ${arg} (see: org list)`);
      print(org);
      return;
    }
    case 'key list':
      print(await listApiKeys(app.db, values.org));
      return;
    case 'key revoke': {
      if (!arg) throw new UsageError('key revoke needs a key id');
      const revoked = await revokeApiKey(app.db, arg, new Date());
      if (!revoked) throw new UsageError(`no active key with id ${arg}`);
      print(revoked);
      return;
    }
    case 'seed-job': {
      if (!values.org || !values.file)
        throw new UsageError('seed-job needs --org <id> and --file <request.json>');
      const endpoint = normaliseEndpoint(values.endpoint ?? '/v1/documents/extract', app.jobs.endpoints);
      if (!endpoint) throw new UsageError(`unknown endpoint ${values.endpoint}`);
      const request = JSON.parse(await readFile(values.file, 'utf8'));
      const { row } = await createJob(app.jobs, {
        organizationId: values.org,
        endpoint,
        request,
        metadata: values.metadata ? JSON.parse(values.metadata) : null,
      });
      print({ id: row.id, status: row.status, request_gcs_paths: row.request_gcs_paths });
      return;
    }
    default:
      throw new UsageError(command ? `unknown command: ${command}` : 'no command given');
  }
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length === 0 || args[0] === '--help' || args[0] === 'help') {
    print(USAGE);
    return;
  }
  const config = loadConfig();
  const database = await openProcessDatabase(config, {
    log: (m) => process.stderr.write(`${m}\n`),
    applicationName: 'jobs-cli',
  });
  try {
    // The server's own composition, without its listener and background tasks: the same
    // database, store and job services the API uses.
    const app = await buildApp({
      config: Object.freeze({ ...config, databaseUrl: database.url }),
      logger: pino({ level: 'silent' }),
      listener: false,
      backgroundTasks: false,
    });
    try {
      await run(app, config, args);
    } finally {
      await app.close();
    }
  } finally {
    await database.stop();
  }
}

main().catch((error) => {
  if (error instanceof UsageError) process.stderr.write(`${error.message}\n\n${USAGE}\n`);
  else if (error instanceof ConfigError) process.stderr.write(`${error.message}\n`);
  else process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
