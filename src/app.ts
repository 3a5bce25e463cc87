import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, LogController } from 'fastify';
import type { Kysely } from 'kysely';
import { ApiKeyCache } from './auth/api-key-cache.js';
import { createAuthenticator, requireScopes } from './auth/authenticate.js';
import type { PeriodicTask } from './background/periodic-task.js';
import type { Config } from './config.js';
import type { NotificationListener } from './db/notification-listener.js';
import type { Database } from './db/types.js';
import { errorHandler, notFoundHandler } from './http/error-handler.js';
import { healthRoutes } from './http/health-routes.js';
import { createValidatorCompiler } from './http/validators.js';
import { BUILTIN_ENDPOINTS } from './jobs/endpoints.js';
import { startExpirySweeper } from './jobs/expiry-sweeper.js';
import { jobCreatorDeps } from './jobs/job-creator.js';
import { jobListRoutes } from './jobs/job-list-routes.js';
import { jobReadRoutes } from './jobs/job-read-routes.js';
import type { JobReaderDeps } from './jobs/job-reader.js';
import { type JobWriteDeps, jobWriteRoutes } from './jobs/job-write-routes.js';
import type { ObjectStore } from './storage/object-store.js';
import { jobAttemptRoutes } from './workers/job-attempt-routes.js';
import type { ClaimDeps } from './workers/job-claimer.js';
import { startLeaseReaper } from './workers/lease-reaper.js';
import { workerRoutes } from './workers/worker-routes.js';

export interface Clock {
  now(): Date;
}

export interface AppDeps {
  config: Readonly<Config>;
  db: Kysely<Database>;
  store: ObjectStore;
  logger: FastifyBaseLogger;
  clock?: Clock;
  /** LISTENs for job notifications. Absent: the status route's wait_seconds answers at once. */
  listener?: NotificationListener;
  /**
   * Periodic maintenance (the lease reaper, …), started with the app and stopped on close.
   * Default: enabled. Tests that control time disable it and run the tasks themselves.
   */
  backgroundTasks?: { enabled: boolean };
}

// A request id from the gateway is kept when it looks like one; anything else is replaced, so
// a client cannot inject arbitrary text into every log line.
const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,200}$/;

/** Composes the server from its dependencies. Never listens: server.ts and tests do. */
export async function buildApp(deps: AppDeps) {
  const { config, db, store } = deps;
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({
      disableRequestLogging: !config.logRequests,
      requestIdLogLabel: 'request_id',
    }),
    // Fastify accepts a hop count at run time; its types only list the other forms.
    trustProxy: config.trustProxy as boolean | string[],
    requestIdHeader: false,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    return503OnClosing: true,
    bodyLimit: config.bodyLimitBytes,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(createValidatorCompiler());
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  // JSON only: any other body answers 415. A body-less POST with Content-Type:
  // application/json is accepted as "no body".
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      const err = error as Error & { statusCode?: number };
      err.statusCode = 400;
      err.message = `The body is not valid JSON: ${err.message}`;
      done(err, undefined);
    }
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Jobs API',
        version: '1.0.0',
        description: 'Asynchronous jobs: clients submit and poll, workers execute and report.',
      },
      components: {
        securitySchemes: {
          ApiKey: { type: 'apiKey', in: 'header', name: 'Api-Key' },
          Bearer: { type: 'http', scheme: 'bearer' },
        },
      },
      security: [{ ApiKey: [] }, { Bearer: [] }],
    },
  });

  const readerDeps: JobReaderDeps = {
    db,
    store,
    restore: { concurrency: config.restoreConcurrency, timeoutMs: config.restoreTimeoutMs },
  };
  const clock = deps.clock ?? { now: () => new Date() };
  const writerDeps: JobWriteDeps = {
    ...jobCreatorDeps(config, { db, store, now: () => clock.now() }),
    clock,
    maxAttemptsLimit: config.maxAttemptsLimit,
    endpoints: new Set([...BUILTIN_ENDPOINTS, ...config.extraEndpoints]),
  };
  const backoff = { baseSeconds: config.retryBaseSeconds, maxSeconds: config.retryMaxSeconds };
  const workerDeps: ClaimDeps = {
    db,
    store,
    now: () => clock.now(),
    backoff,
    offload: writerDeps.offload,
    reader: readerDeps,
    listener: deps.listener,
  };
  const authenticate = createAuthenticator(db, new ApiKeyCache(config.apiKeyCacheTtlMs));

  await app.register(
    async (root) => {
      await root.register(healthRoutes, { db });
      root.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

      await root.register(
        async (clientApi) => {
          requireScopes(clientApi, authenticate, ['client']);
          await clientApi.register(jobReadRoutes, { deps: readerDeps, listener: deps.listener });
          await clientApi.register(jobListRoutes, { deps: readerDeps, endpoints: writerDeps.endpoints });
          await clientApi.register(jobWriteRoutes, { deps: writerDeps });
          await clientApi.register(jobAttemptRoutes, { db });
        },
        { prefix: '/v1' },
      );

      await root.register(
        async (workerApi) => {
          requireScopes(workerApi, authenticate, ['worker']);
          await workerApi.register(workerRoutes, {
            deps: workerDeps,
            endpoints: writerDeps.endpoints,
            leases: { defaultSeconds: config.leaseSeconds, maxSeconds: config.maxLeaseSeconds },
          });
        },
        { prefix: '/v1/worker' },
      );
    },
    { prefix: config.basePath },
  );

  const backgroundTasks: PeriodicTask[] = [];
  if (deps.backgroundTasks?.enabled ?? true) {
    backgroundTasks.push(
      startLeaseReaper({
        db,
        now: () => clock.now(),
        backoff,
        batchSize: config.reaperBatchSize,
        intervalMs: config.reaperIntervalMs,
        logger: app.log,
      }),
      startExpirySweeper({
        db,
        store,
        now: () => clock.now(),
        intervalMs: config.expirySweepIntervalMs,
        logger: app.log,
      }),
    );
  }
  app.addHook('onClose', async () => {
    await Promise.all(backgroundTasks.map((task) => task.stop()));
  });

  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
