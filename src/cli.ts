import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { insertApiKey, listApiKeys, revokeApiKey } from './auth/api-key-repository.js';
import { generateApiKey } from './auth/api-keys.js';
import { findOrganization, insertOrganization, listOrganizations } from './auth/organization-repository.js';
import { API_KEY_SCOPES, type ApiKeyScope } from './auth/scopes.js';
import { ConfigError, loadConfig } from './config.js';
import { BUILTIN_ENDPOINTS, normaliseEndpoint } from './jobs/endpoints.js';
import { createJob, jobCreatorDeps } from './jobs/job-creator.js';
import { openRuntime, type Runtime } from './runtime.js';

const USAGE = `Usage: npm run cli -- <command> [options]

  quickstart                          create an organization "default" with a client key and a worker key
                                      (printed once)
  org create <name>                   create an organization; prints its id
  org list                            list organizations
  key create --org <id> [--scope client|worker|admin] [--name <text>]
                                      create an API key; the key is printed once and never again
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

async function createKey(rt: Runtime, organizationId: string, scope: ApiKeyScope, name: string | null) {
  if (!(await findOrganization(rt.db, organizationId))) {
    throw new UsageError(`no organization with id ${organizationId} (see: org list)`);
  }
  const { key, hash, displayPrefix } = generateApiKey();
  const row = await insertApiKey(rt.db, { organizationId, name, scope, keyHash: hash, displayPrefix });
  return { ...row, key };
}

async function run(rt: Runtime, config: ReturnType<typeof loadConfig>, args: string[]) {
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
    },
  });
  const [group, action, arg] = positionals;
  const command = [group, action].filter(Boolean).join(' ');
  switch (group === 'quickstart' || group === 'migrate' || group === 'seed-job' ? group : command) {
    case 'migrate':
      print('migrations applied');
      return;
    case 'quickstart': {
      const org = await insertOrganization(rt.db, 'default');
      const client = await createKey(rt, org.id, 'client', 'quickstart client');
      const worker = await createKey(rt, org.id, 'worker', 'quickstart worker');
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
      print(await insertOrganization(rt.db, arg));
      return;
    }
    case 'org list':
      print(await listOrganizations(rt.db));
      return;
    case 'key create': {
      if (!values.org) throw new UsageError('key create needs --org <organization id>');
      print(await createKey(rt, values.org, scopeOf(values.scope), values.name ?? null));
      return;
    }
    case 'key list':
      print(await listApiKeys(rt.db, values.org));
      return;
    case 'key revoke': {
      if (!arg) throw new UsageError('key revoke needs a key id');
      const revoked = await revokeApiKey(rt.db, arg, new Date());
      if (!revoked) throw new UsageError(`no active key with id ${arg}`);
      print(revoked);
      return;
    }
    case 'seed-job': {
      if (!values.org || !values.file)
        throw new UsageError('seed-job needs --org <id> and --file <request.json>');
      const allowed = new Set([...BUILTIN_ENDPOINTS, ...config.extraEndpoints]);
      const endpoint = normaliseEndpoint(values.endpoint ?? '/v1/documents/extract', allowed);
      if (!endpoint) throw new UsageError(`unknown endpoint ${values.endpoint}`);
      const request = JSON.parse(await readFile(values.file, 'utf8'));
      const { row } = await createJob(
        jobCreatorDeps(config, { db: rt.db, store: rt.store, now: () => new Date() }),
        {
          organizationId: values.org,
          endpoint,
          request,
          metadata: values.metadata ? JSON.parse(values.metadata) : null,
        },
      );
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
  const rt = await openRuntime(config, {
    log: (m) => process.stderr.write(`${m}\n`),
    applicationName: 'jobs-cli',
  });
  try {
    await run(rt, config, args);
  } finally {
    await rt.close();
  }
}

main().catch((error) => {
  if (error instanceof UsageError) process.stderr.write(`${error.message}\n\n${USAGE}\n`);
  else if (error instanceof ConfigError) process.stderr.write(`${error.message}\n`);
  else process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
