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
import {
  createNotificationListener,
  JOB_CHANGED_CHANNEL,
  JOB_QUEUED_CHANNEL,
  type NotificationListener,
} from '../../src/db/notification-listener.js';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

export interface TestContext {
  app: App;
  database: TestDatabase;
  db: TestDatabase['db'];
  store: ObjectStore;
  config: Readonly<Config>;
  listener: NotificationListener;
  close(): Promise<void>;
}

/**
 * Builds the real app on its own database; the object store defaults to a temp folder.
 * Background tasks (reaper, sweeper) stay off unless asked for: tests run them explicitly, so
 * a timer never changes rows under a test's feet.
 */
export async function createTestApp(
  options: {
    env?: Record<string, string>;
    store?: ObjectStore;
    clock?: Clock;
    backgroundTasks?: boolean;
  } = {},
): Promise<TestContext> {
  const database = await createTestDatabase();
  const tempDir = options.store ? undefined : await mkdtemp(path.join(os.tmpdir(), 'jobs-store-'));
  const store = options.store ?? new FilesystemObjectStore(tempDir as string);
  const config = loadConfig({ LOG_LEVEL: 'silent', DATABASE_URL: database.connectionString, ...options.env });
  const logger = pino({ level: 'silent' });
  const listener = createNotificationListener({
    connectionString: database.connectionString,
    channels: [JOB_CHANGED_CHANNEL, JOB_QUEUED_CHANNEL],
    logger,
  });
  await listener.start();
  const app = await buildApp({
    config,
    db: database.db,
    store,
    logger,
    clock: options.clock,
    listener,
    backgroundTasks: { enabled: options.backgroundTasks ?? false },
  });
  await app.ready();
  return {
    app,
    database,
    db: database.db,
    store,
    config,
    listener,
    async close() {
      await app.close();
      await listener.close();
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
