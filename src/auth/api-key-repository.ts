import type { Kysely } from 'kysely';
import type { Database } from '../db/types.js';
import type { ApiKeyScope } from '../domain/api-key-scopes.js';
import { newApiKeyId } from '../domain/ids.js';

export interface ActiveApiKey {
  id: string;
  /** Null for a fleet key: it serves every organization. */
  organizationId: string | null;
  scope: ApiKeyScope;
}

export async function findActiveApiKeyByHash(
  db: Kysely<Database>,
  keyHash: string,
): Promise<ActiveApiKey | undefined> {
  const row = await db
    .selectFrom('api_keys')
    .select(['id', 'organization_id', 'scope'])
    .where('key_hash', '=', keyHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row && { id: row.id, organizationId: row.organization_id, scope: row.scope };
}

export async function insertApiKey(
  db: Kysely<Database>,
  key: {
    /** Null for a fleet key. */
    organizationId: string | null;
    name: string | null;
    scope: ApiKeyScope;
    keyHash: string;
    displayPrefix: string;
  },
) {
  return db
    .insertInto('api_keys')
    .values({
      id: newApiKeyId(),
      organization_id: key.organizationId,
      name: key.name,
      scope: key.scope,
      key_hash: key.keyHash,
      display_prefix: key.displayPrefix,
    })
    .returning(['id', 'organization_id', 'name', 'scope', 'display_prefix', 'created_at', 'revoked_at'])
    .executeTakeFirstOrThrow();
}

export async function listApiKeys(db: Kysely<Database>, organizationId?: string) {
  let query = db
    .selectFrom('api_keys')
    .select(['id', 'organization_id', 'name', 'scope', 'display_prefix', 'created_at', 'revoked_at'])
    .orderBy('created_at')
    .orderBy('id');
  if (organizationId) query = query.where('organization_id', '=', organizationId);
  return query.execute();
}

/** Revokes once: answers undefined when the key does not exist or was already revoked. */
export async function revokeApiKey(db: Kysely<Database>, keyId: string, at: Date) {
  return db
    .updateTable('api_keys')
    .set({ revoked_at: at })
    .where('id', '=', keyId)
    .where('revoked_at', 'is', null)
    .returning(['id', 'revoked_at'])
    .executeTakeFirst();
}

export async function countActiveApiKeys(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('api_keys')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('revoked_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}
