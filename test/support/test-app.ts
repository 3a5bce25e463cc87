import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { type App, buildApp, type Clock } from '../../src/app.js';
import { insertApiKey } from '../../src/auth/api-key-repository.js';
import { generateApiKey } from '../../src/auth/api-keys.js';
import { insertOrganization } from '../../src/auth/organization-repository.js';
import type { ApiKeyScope } from '../../src/auth/scopes.js';
import { type Config, loadConfig } from '../../src/config.js';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

export interface TestContext {
  app: App;
  database: TestDatabase;
  db: TestDatabase['db'];
  store: ObjectStore;
  config: Readonly<Config>;
  close(): Promise<void>;
}

/** Builds the real app on its own database; the object store defaults to a temp folder. */
export async function createTestApp(
  options: { env?: Record<string, string>; store?: ObjectStore; clock?: Clock } = {},
): Promise<TestContext> {
  const database = await createTestDatabase();
  const tempDir = options.store ? undefined : await mkdtemp(path.join(os.tmpdir(), 'jobs-store-'));
  const store = options.store ?? new FilesystemObjectStore(tempDir as string);
  const config = loadConfig({ LOG_LEVEL: 'silent', DATABASE_URL: database.connectionString, ...options.env });
  const app = await buildApp({
    config,
    db: database.db,
    store,
    logger: pino({ level: 'silent' }),
    clock: options.clock,
  });
  await app.ready();
  return {
    app,
    database,
    db: database.db,
    store,
    config,
    async close() {
      await app.close();
      await database.destroy();
      if (tempDir) await rm(tempDir, { recursive: true, force: true });
    },
  };
}

/** A new organization with one key of the given scope. */
export async function createTenant(db: TestDatabase['db'], scope: ApiKeyScope = 'client') {
  const org = await insertOrganization(db, `org ${Math.random()}`);
  return { organizationId: org.id, ...(await addKey(db, org.id, scope)) };
}

export async function addKey(db: TestDatabase['db'], organizationId: string, scope: ApiKeyScope) {
  const { key, hash, displayPrefix } = generateApiKey();
  const row = await insertApiKey(db, { organizationId, name: null, scope, keyHash: hash, displayPrefix });
  return { key, keyId: row.id };
}
