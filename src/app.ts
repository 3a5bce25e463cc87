import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, LogController } from 'fastify';
import type { Kysely } from 'kysely';
import { ApiKeyCache } from './auth/api-key-cache.js';
import { createAuthenticator, requireScopes } from './auth/authenticate.js';
import type { Config } from './config.js';
import type { NotificationListener } from './db/notification-listener.js';
import type { Database } from './db/types.js';
import { type Clock, systemClock } from './domain/clock.js';
import { AppError } from './domain/errors.js';
import { errorHandler, notFoundHandler } from './http/error-handler.js';
import { clientErrorHandler, frameworkErrorHandler } from './http/framework-errors.js';
import { healthRoutes } from './http/health-routes.js';
import { acceptJsonBodiesOnly } from './http/json-body.js';
import { registerOpenApi } from './http/openapi.js';
import { requestIdOf } from './http/request-ids.js';
import { setApiHeaders } from './http/response-headers.js';
import { createValidatorCompiler } from './http/validators.js';
import { jobAttemptRoutes } from './jobs/job-attempt-routes.js';
import { jobListRoutes } from './jobs/job-list-routes.js';
import { jobReadRoutes } from './jobs/job-read-routes.js';
import { jobWriteRoutes } from './jobs/job-write-routes.js';
import { backgroundTasksPlugin } from './plugins/background-tasks.js';
import { databasePlugin } from './plugins/database.js';
import { jobContextPlugin } from './plugins/job-context.js';
import { notificationsPlugin } from './plugins/notifications.js';
import { objectStorePlugin } from './plugins/object-store.js';
import type { ObjectStore } from './storage/object-store.js';
import { reportRoutes } from './workers/report-routes.js';
import { workerRoutes } from './workers/worker-routes.js';

export interface AppDeps {
  config: Config;
  logger: FastifyBaseLogger;
  /** The time recorded in rows. Default: the system clock. */
  clock?: Clock;
  /** Draws the jitter of retry backoffs. Default: Math.random. */
  random?: () => number;
  /** Default: a pool on DATABASE_URL, owned by the app. A pool given here stays its owner's. */
  db?: Kysely<Database>;
  /** Default: the store of STORAGE_URL, owned by the app. A store given here stays its owner's. */
  store?: ObjectStore;
  /** Default: a LISTEN connection on DATABASE_URL, owned by the app; `false`: none. */
  listener?: NotificationListener | false;
  /** The lease reaper and the expiry sweeper (default true). Tests that control time run them themselves. */
  backgroundTasks?: boolean;
}

const RETRY_AFTER_SECONDS = '2';

/** Composes the server from its dependencies. Never listens: server.ts and tests do. */
export async function buildApp(deps: AppDeps) {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({
      disableRequestLogging: !config.logRequests,
      requestIdLogLabel: 'request_id',
    }),
    // Fastify accepts a hop count at run time; its types only list the other forms.
    trustProxy: config.trustProxy as boolean | string[],
    requestIdHeader: false,
    genReqId: requestIdOf,
    // Answered by the hook below, in the one error shape.
    return503OnClosing: false,
    bodyLimit: config.bodyLimitBytes,
    // A request (body included) not received in this time answers 408; Node checks every second.
    // Node 20 only enforces it when the server is created with it, hence `http` as well.
    requestTimeout: config.requestTimeoutSeconds * 1000,
    http: { requestTimeout: config.requestTimeoutSeconds * 1000, connectionsCheckingInterval: 1000 },
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(createValidatorCompiler());
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // A 503 is temporary by definition (a dependency away, a shutdown): say when to come back.
  app.addHook('onSend', async (_request, reply) => {
    if (reply.statusCode === 503) reply.header('retry-after', RETRY_AFTER_SECONDS);
  });
  app.addHook('onRequest', async (request, reply) => {
    setApiHeaders(reply, request.id);
    if (closing) {
      reply.header('connection', 'close');
      throw new AppError('service_unavailable', 'The server is shutting down; send the request again.');
    }
  });
  acceptJsonBodiesOnly(app, { maxDepth: config.bodyMaxDepth });
  await registerOpenApi(app);

  // Resources first: each closes what it opened when the app closes, in reverse order.
  await app.register(databasePlugin, { config, db: deps.db });
  await app.register(objectStorePlugin, { config, store: deps.store });
  await app.register(notificationsPlugin, { config, listener: deps.listener });
  await app.register(jobContextPlugin, { config, clock: deps.clock ?? systemClock, random: deps.random });
  if (deps.backgroundTasks ?? true) await app.register(backgroundTasksPlugin);

  const authenticate = createAuthenticator(app.db, new ApiKeyCache(config.apiKeyCacheTtlSeconds * 1000));
  const ctx = app.jobs;
  await app.register(
    async (root) => {
      await root.register(healthRoutes, {
        db: app.db,
        checkStorage: async (signal) => app.store.check?.({ signal }),
      });
      root.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

      await root.register(
        async (clientApi) => {
          requireScopes(clientApi, authenticate, ['client']);
          await clientApi.register(jobReadRoutes, { ctx });
          await clientApi.register(jobListRoutes, { ctx });
          await clientApi.register(jobWriteRoutes, { ctx });
          await clientApi.register(jobAttemptRoutes, { ctx });
        },
        { prefix: '/v1' },
      );

      await root.register(
        async (workerApi) => {
          requireScopes(workerApi, authenticate, ['worker', 'fleet']);
          await workerApi.register(workerRoutes, { ctx });
          await workerApi.register(reportRoutes, { ctx });
        },
        { prefix: '/v1/worker' },
      );
    },
    { prefix: config.basePath },
  );

  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
