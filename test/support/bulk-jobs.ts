import { sql } from 'kysely';
import type { TestContext } from './test-app.js';

/**
 * Queues `count` small jobs of an organization in one INSERT … SELECT generate_series (as the
 * bench's fixtures do): tens of thousands in well under a second, where the creation path would
 * take a request each. Ids are `job_<prefix><i, zero-padded>`, created a millisecond apart in
 * order, so claims take them in that order. The notification triggers are off for this insert:
 * nobody waits for these jobs yet, so nobody needs to be woken.
 */
export async function insertQueuedJobs(
  db: TestContext['db'],
  options: { organizationId: string; count: number; idPrefix: string; endpoint?: string },
): Promise<void> {
  const { organizationId, count, idPrefix } = options;
  const endpoint = options.endpoint ?? '/v1/documents/extract';
  const width = 21 - idPrefix.length;
  await db.connection().execute(async (conn) => {
    await sql`set session_replication_role = replica`.execute(conn);
    try {
      await sql`
        insert into jobs (id, organization_id, status, endpoint, request, max_attempts,
          created_at, updated_at, expires_at, run_after)
        select 'job_' || ${idPrefix}::text || lpad(i::text, ${width}::int, '0'), ${organizationId},
          'queued', ${endpoint},
          jsonb_build_object('document', jsonb_build_object('filename', 'doc-' || i || '.pdf',
            'url', 'https://files.example/doc-' || i || '.pdf')),
          3, t, t, t + interval '7 days', t
        from generate_series(1, ${count}::int) i,
          lateral (select now() - make_interval(secs => (${count}::int - i) / 1000.0) as t) ts`.execute(conn);
    } finally {
      await sql`set session_replication_role = origin`.execute(conn);
    }
  });
  // Fresh statistics, so the claim plans for the table as it now is.
  await sql`analyze jobs`.execute(db);
}
