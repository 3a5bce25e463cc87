import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import { createObjectStore } from '../storage/create-object-store.js';
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
 */
export const objectStorePlugin = fp<{ config: Config; store?: ObjectStore }>(
  async (app, { config, store }) => {
    if (store) {
      app.decorate('store', store);
      return;
    }
    const own = createObjectStore({
      storageUrl: config.storageUrl,
      gcsApiEndpoint: config.gcsApiEndpoint,
      gcsProjectId: config.gcsProjectId,
    });
    app.decorate('store', own);
    app.addHook('onClose', async () => {
      await own.close?.();
    });
  },
  { name: 'object-store' },
);
