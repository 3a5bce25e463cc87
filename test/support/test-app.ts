import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import { insertApiKey } from '../../src/auth/api-key-repository.js';
import { generateApiKey } from '../../src/auth/api-keys.js';
import { insertOrganization } from '../../src/auth/organization-repository.js';
import { type Config, loadConfig } from '../../src/config.js';
import type { NotificationListener } from '../../src/db/notification-listener.js';
import type { ApiKeyScope } from '../../src/domain/api-key-scopes.js';
import type { Clock } from '../../src/domain/clock.js';
import type { JobContext } from '../../src/jobs/job-context.js';
import { FilesystemObjectStore } from '../../src/storage/filesystem-store.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';

export interface TestContext {
  app: App;
  database: TestDatabase;
  db: App['db'];
  store: ObjectStore;
  config: Config;
  listener: NotificationListener;
  /** The app's job context: what the services and background tasks are called with. */
  jobs: JobContext;
  close(): Promise<void>;
}

export interface TestAppOptions {
  env?: Record<string, string>;
  store?: ObjectStore;
  clock?: Clock;
  backgroundTasks?: boolean;
  /** Default: a silent logger. A real one runs the request log's serializers and redaction too. */
  logger?: FastifyBaseLogger;
}

/**
 * Builds the real app on its own database (cloned from the migrated template), with its own pool
 * and LISTEN connection; the object store defaults to a temp folder. Background tasks (reaper,
 * sweeper) stay off unless asked for: tests run them explicitly, so a timer never changes rows
 * under a test's feet.
 */
export async function createTestApp(options: TestAppOptions = {}): Promise<TestContext> {
  const database = await createTestDatabase();
  const tempDir = options.store ? undefined : await mkdtemp(path.join(os.tmpdir(), 'jobs-store-'));
  const store = options.store ?? new FilesystemObjectStore(tempDir as string);
  const config = loadConfig({ LOG_LEVEL: 'silent', DATABASE_URL: database.connectionString, ...options.env });
  const app = await buildApp({
    config,
    store,
    logger: options.logger ?? pino({ level: 'silent' }),
    clock: options.clock,
    backgroundTasks: options.backgroundTasks ?? false,
  });
  await app.ready();
  return {
    app,
    database,
    db: app.db,
    store,
    config,
    listener: app.listener as NotificationListener,
    jobs: app.jobs,
    async close() {
      await app.close();
      await database.destroy();
      if (tempDir) await rm(tempDir, { recursive: true, force: true });
    },
  };
}

/**
 * The test app of a test file: built before its tests, closed after them. The answer's fields
 * can be read inside tests and hooks.
 */
export function useTestApp(options: TestAppOptions = {}): TestContext {
  let current: TestContext | undefined;
  beforeAll(async () => {
    current = await createTestApp(options);
  });
  afterAll(async () => {
    await current?.close();
  });
  const get = () => {
    if (!current) throw new Error('the test app is built in beforeAll: use it inside tests and hooks');
    return current;
  };
  return {
    get app() {
      return get().app;
    },
    get database() {
      return get().database;
    },
    get db() {
      return get().db;
    },
    get store() {
      return get().store;
    },
    get config() {
      return get().config;
    },
    get listener() {
      return get().listener;
    },
    get jobs() {
      return get().jobs;
    },
    close: () => get().close(),
  };
}

/** A new organization with one key of the given scope. */
export async function createTenant(db: TestContext['db'], scope: ApiKeyScope = 'client') {
  const org = await insertOrganization(db, `org ${Math.random()}`);
  return { organizationId: org.id, ...(await addKey(db, org.id, scope)) };
}

export async function addKey(db: TestContext['db'], organizationId: string | null, scope: ApiKeyScope) {
  const { key, hash, displayPrefix } = generateApiKey();
  const row = await insertApiKey(db, { organizationId, name: null, scope, keyHash: hash, displayPrefix });
  return { key, keyId: row.id };
}
