import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../db/types.js';
import type { ApiKeyScope } from '../domain/api-key-scopes.js';
import { AppError } from '../domain/errors.js';
import type { ApiKeyCache } from './api-key-cache.js';
import { type ActiveApiKey, findActiveApiKeyByHash } from './api-key-repository.js';
import { hashApiKey } from './api-keys.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified key of the caller; set by the scope hook of the route's context. */
    auth: ActiveApiKey;
  }
}

/** The key a caller sent: `Api-Key` header, `Authorization: Bearer`, or `access_token` query. */
export function credentialOf(request: FastifyRequest): string | undefined {
  const header = request.headers['api-key'];
  if (typeof header === 'string' && header.trim() !== '') return header.trim();
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  const token = (request.query as Record<string, unknown> | undefined)?.access_token;
  if (typeof token === 'string' && token !== '') return token;
  return undefined;
}

export type Authenticator = (request: FastifyRequest) => Promise<ActiveApiKey>;

export function createAuthenticator(db: Kysely<Database>, cache: ApiKeyCache): Authenticator {
  return async (request) => {
    const key = credentialOf(request);
    if (!key) {
      throw new AppError(
        'unauthorized',
        'Missing API key: send it in the Api-Key header, as Authorization: Bearer <key>, or as the access_token query parameter.',
      );
    }
    const keyHash = hashApiKey(key);
    const cached = cache.get(keyHash);
    if (cached) return cached;
    const found = await findActiveApiKeyByHash(db, keyHash);
    if (!found) throw new AppError('unauthorized', 'Invalid API key: it does not exist or has been revoked.');
    cache.set(keyHash, found);
    return found;
  };
}

/**
 * Guards every route of the encapsulated context `app` is: the caller needs a valid key with
 * one of `scopes` (an admin key passes everywhere).
 */
export function requireScopes(
  app: FastifyInstance,
  authenticate: Authenticator,
  scopes: readonly ApiKeyScope[],
) {
  app.addHook('onRequest', async (request) => {
    const key = await authenticate(request);
    if (key.scope !== 'admin' && !scopes.includes(key.scope)) {
      throw new AppError(
        'forbidden',
        `This API key has the '${key.scope}' scope; this route needs ${scopes.map((s) => `'${s}'`).join(' or ')}.`,
      );
    }
    request.auth = key;
  });
}
