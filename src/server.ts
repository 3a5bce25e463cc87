import { buildApp } from './app.js';
import { countActiveApiKeys } from './auth/api-key-repository.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { openProcessDatabase } from './db/process-database.js';
import { withTimeout } from './lib/concurrency.js';
import { createLogger } from './logger.js';

const SHUTDOWN_GRACE_MS = 10_000;
const STORAGE_CHECK_TIMEOUT_MS = 5_000;

function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

async function main() {
  const config = loadConfigOrExit();
  const logger = createLogger({ level: config.logLevel });
  const database = await openProcessDatabase(config, {
    log: (m) => logger.info(m),
    applicationName: 'jobs-server',
  });
  let app: Awaited<ReturnType<typeof buildApp>>;
  try {
    app = await buildApp({ config: Object.freeze({ ...config, databaseUrl: database.url }), logger });
  } catch (error) {
    await database.stop();
    throw error;
  }

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    // In-flight requests get a grace period; then keep-alive sockets that never sent a request
    // (which server.close() waits for) are cut, so shutdown cannot hang.
    const cut = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
    cut.unref();
    try {
      await app.close();
      await database.stop();
    } finally {
      process.exit(0);
    }
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));

  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    logger.error({ err: error }, `could not listen on ${config.host}:${config.port} (set PORT or HOST)`);
    await app.close();
    await database.stop();
    process.exit(1);
  }
  logger.info(
    { storage: app.store.baseUri, database: database.embedded ? database.url : 'DATABASE_URL' },
    `jobs server ready on http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${config.port}${config.basePath}`,
  );
  try {
    await withTimeout(async (signal) => app.store.check?.({ signal }), STORAGE_CHECK_TIMEOUT_MS);
  } catch (error) {
    logger.warn(
      { storage: app.store.baseUri, reason: error instanceof Error ? error.message : String(error) },
      'object storage cannot be used: creates and completions with large payloads will answer 503, and /readyz says so, until it can',
    );
  }
  if ((await countActiveApiKeys(app.db)) === 0) {
    // Compiled (Docker) and source (npm start) installs run the CLI differently.
    const cli = import.meta.url.endsWith('.js') ? 'node dist/src/cli.js' : 'npm run cli --';
    logger.info(
      `no API key exists yet: run \`${cli} quickstart\` to create an organization with a client and a worker key`,
    );
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
