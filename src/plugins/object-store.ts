import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import { createObjectStore } from '../storage/create-object-store.js';
import { MonitoredObjectStore } from '../storage/monitored-store.js';
import type { ObjectStore } from '../storage/object-store.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Where offloaded payloads live: GCS or the local disk (STORAGE_URL). */
    store: ObjectStore;
  }
}

/**
 * `app.store`: the store of STORAGE_URL, whose clients and sockets are released when the app
 * closes. A store handed in (a test's fake GCS server) is used as is and left to its owner.
 * Either way the app sees it through MonitoredObjectStore, so that an outage is logged once, on
 * the way in and on the way out, and a store handed in behaves like the app's own.
 */
export const objectStorePlugin = fp<{ config: Config; store?: ObjectStore }>(
  async (app, { config, store }) => {
    const own = store
      ? undefined
      : createObjectStore({
          storageUrl: config.storageUrl,
          gcsApiEndpoint: config.gcsApiEndpoint,
          gcsProjectId: config.gcsProjectId,
          storageWriteTimeoutMs: config.storageWriteTimeoutMs,
        });
    const inner = (store ?? own) as ObjectStore;
    app.decorate('store', new MonitoredObjectStore(inner, app.log));
    if (own) {
      app.addHook('onClose', async () => {
        await own.close?.();
      });
    }
  },
  { name: 'object-store' },
);
