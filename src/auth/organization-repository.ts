import type { Kysely } from 'kysely';
import type { Database } from '../db/types.js';
import { newOrganizationId } from '../domain/ids.js';

export async function insertOrganization(db: Kysely<Database>, name: string, id = newOrganizationId()) {
  return db
    .insertInto('organizations')
    .values({ id, name })
    .returning(['id', 'name', 'created_at'])
    .executeTakeFirstOrThrow();
}

export async function findOrganization(db: Kysely<Database>, id: string) {
  return db
    .selectFrom('organizations')
    .select(['id', 'name', 'created_at'])
    .where('id', '=', id)
    .executeTakeFirst();
}

export async function listOrganizations(db: Kysely<Database>) {
  return db
    .selectFrom('organizations')
    .select(['id', 'name', 'max_in_flight', 'created_at'])
    .orderBy('created_at')
    .execute();
}

/** Sets (or clears, with null) how many of the organization's jobs may be in progress at once. */
export async function setMaxInFlight(db: Kysely<Database>, id: string, maxInFlight: number | null) {
  return db
    .updateTable('organizations')
    .set({ max_in_flight: maxInFlight })
    .where('id', '=', id)
    .returning(['id', 'name', 'max_in_flight', 'created_at'])
    .executeTakeFirst();
}
