import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { insertApiKey } from '../../src/auth/api-key-repository.js';
import { generateApiKey } from '../../src/auth/api-keys.js';
import { insertOrganization } from '../../src/auth/organization-repository.js';
import type { Database } from '../../src/db/types.js';
import type { ApiKeyScope } from '../../src/domain/api-key-scopes.js';

export interface Tenant {
  organizationId: string;
  key: string;
}

export async function createTenant(db: Kysely<Database>, name: string, scope: ApiKeyScope): Promise<Tenant> {
  const org = await insertOrganization(db, name);
  const { key, hash, displayPrefix } = generateApiKey();
  await insertApiKey(db, { organizationId: org.id, name, scope, keyHash: hash, displayPrefix });
  return { organizationId: org.id, key };
}

/** A key of the operator's worker fleet: bound to no organization, it claims every one's jobs. */
export async function createFleetKey(db: Kysely<Database>): Promise<string> {
  const { key, hash, displayPrefix } = generateApiKey();
  await insertApiKey(db, {
    organizationId: null,
    name: 'bench fleet',
    scope: 'fleet',
    keyHash: hash,
    displayPrefix,
  });
  return key;
}

/** The id of the i-th loaded job (1-based): the load driver builds the same ids to pick at random. */
export const loadedJobId = (prefix: string, i: number) =>
  `job_${prefix}${String(i).padStart(21 - prefix.length, '0')}`;

/**
 * Inserts `count` jobs in one INSERT ... SELECT generate_series, with the notification triggers
 * off for this session (session_replication_role = replica): a bulk load is not a change anyone
 * waits for, and a million NOTIFYs would only fill the queue.
 */
export async function bulkInsertJobs(
  db: Kysely<Database>,
  options: {
    organizationId: string;
    count: number;
    /** A few characters that keep these ids apart from other loads. */
    idPrefix: string;
    status: 'completed' | 'queued';
  },
): Promise<void> {
  const { organizationId, count, idPrefix, status } = options;
  const width = 21 - idPrefix.length;
  const completed = status === 'completed';
  await db.connection().execute(async (conn) => {
    await sql`set session_replication_role = replica`.execute(conn);
    try {
      await sql`
        insert into jobs (
          id, organization_id, status, endpoint, request, response, metadata, attempt_count, max_attempts,
          created_at, updated_at, started_at, completed_at, last_attempt_at, expires_at, run_after
        )
        select
          'job_' || ${idPrefix}::text || lpad(i::text, ${width}::int, '0'),
          ${organizationId}, ${status}, '/v1/documents/extract',
          jsonb_build_object('document', jsonb_build_object(
            'filename', 'doc-' || i || '.pdf', 'url', 'https://files.example/doc-' || i || '.pdf')),
          case when ${completed} then jsonb_build_object('status_code', 200,
            'body', jsonb_build_object('pages', i % 40, 'title', 'Document ' || i)) end,
          case when i % 4 = 0 then jsonb_build_object('batch', 'b' || (i % 100)) end,
          case when ${completed} then 1 else 0 end, 3,
          t, t, case when ${completed} then t end, case when ${completed} then t end,
          case when ${completed} then t end, t + interval '7 days', t
        from generate_series(1, ${count}::int) i,
          lateral (select now() - make_interval(secs => ${count}::int - i) as t) ts
      `.execute(conn);
    } finally {
      await sql`set session_replication_role = origin`.execute(conn);
    }
  });
}

export async function analyze(db: Kysely<Database>) {
  await sql`vacuum (analyze) jobs`.execute(db);
  await sql`vacuum (analyze) job_artifacts`.execute(db);
}
