import type { AddressInfo } from 'node:net';
import type { Clock } from '../../src/domain/clock.js';
import { addKey, createTenant, createTestApp, type TestContext } from '../support/test-app.js';

export interface SdkServer {
  ctx: TestContext;
  baseUrl: string;
}

/**
 * The real app listening on a free port of 127.0.0.1, for the SDK to talk to over HTTP. Background
 * tasks (the lease reaper, the expiry sweeper) stay off unless asked for.
 */
export async function startSdkServer(
  options: { env?: Record<string, string>; clock?: Clock; backgroundTasks?: boolean } = {},
) {
  const ctx = await createTestApp({
    env: options.env,
    clock: options.clock,
    backgroundTasks: options.backgroundTasks,
  });
  await ctx.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = ctx.app.server.address() as AddressInfo;
  return { ctx, baseUrl: `http://127.0.0.1:${port}` } satisfies SdkServer;
}

/**
 * Closes the server and its database. fetch may leave a connection open on which it never sent a
 * request; Node does not count it as idle, so server.close() would wait for its headers timeout.
 */
export async function stopSdkServer(server: SdkServer) {
  const sweep = setInterval(() => server.ctx.app.server.closeAllConnections(), 20);
  try {
    await server.ctx.close();
  } finally {
    clearInterval(sweep);
  }
}

/** An organization with a client key and a worker key: its queue is its own. */
export async function createSdkTenant(ctx: TestContext) {
  const tenant = await createTenant(ctx.db, 'client');
  const worker = await addKey(ctx.db, tenant.organizationId, 'worker');
  return { organizationId: tenant.organizationId, clientKey: tenant.key, workerKey: worker.key };
}

export const textDataUrl = (text: string, mime = 'text/plain') =>
  `data:${mime};base64,${Buffer.from(text).toString('base64')}`;

export const parseRequest = (text: string, filename = 'notes.txt') => ({
  document: { filename, url: textDataUrl(text) },
});

/** Waits for a condition another party makes true, checking every 10 ms, at most `ms`. */
export async function until(condition: () => boolean | Promise<boolean>, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A promise with its resolve function, to hold a handler until the test lets it go. */
export function gate<T = void>() {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Collects log entries so a test can assert on what the worker said. */
export function memoryLogger() {
  const entries: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => {
    entries.push({ level, message, fields });
  };
  return { entries, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}
