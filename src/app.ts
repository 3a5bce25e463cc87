import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, LogController } from 'fastify';
import type { Kysely } from 'kysely';
import { ApiKeyCache } from './auth/api-key-cache.js';
import { createAuthenticator, requireScopes } from './auth/authenticate.js';
import type { Config } from './config.js';
import type { Database } from './db/types.js';
import { errorHandler, notFoundHandler } from './http/error-handler.js';
import { healthRoutes } from './http/health-routes.js';
import { jobReadRoutes } from './jobs/job-read-routes.js';
import type { JobReaderDeps } from './jobs/job-reader.js';
import type { ObjectStore } from './storage/object-store.js';

export interface Clock {
  now(): Date;
}

export interface AppDeps {
  config: Readonly<Config>;
  db: Kysely<Database>;
  store: ObjectStore;
  logger: FastifyBaseLogger;
  clock?: Clock;
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
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
    bodyLimit: config.bodyLimitBytes,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  // A body-less POST with Content-Type: application/json is accepted as "no body".
  app.removeContentTypeParser('application/json');
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
  const authenticate = createAuthenticator(db, new ApiKeyCache(config.apiKeyCacheTtlMs));

  await app.register(
    async (root) => {
      await root.register(healthRoutes, { db });
      root.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

      await root.register(
        async (clientApi) => {
          requireScopes(clientApi, authenticate, ['client']);
          await clientApi.register(jobReadRoutes, { deps: readerDeps });
        },
        { prefix: '/v1' },
      );
    },
    { prefix: config.basePath },
  );

  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
