import { sql } from 'kysely';
import { DETAIL_COLUMNS, type JobDetailRow } from '../db/job-columns.js';
import type { Db } from '../db/types.js';
import type { ArtifactRecord } from '../domain/artifacts.js';
import type { Problem } from '../domain/job-shape.js';
import type { LeaseRef } from '../domain/lease.js';
import { toArtifactRows } from './artifact-rows.js';
import { keyedJobStatusAllows, keyedOrganization, statusAfter } from './transition-sql.js';

export interface Completion {
  lease: LeaseRef;
  /** The response as stored: its offloaded values replaced by their storage URIs. */
  response: unknown;
  warnings: readonly Problem[] | null;
  /** The response's offloaded values; their objects' intents are claimed by the completion. */
  artifacts: readonly ArtifactRecord[];
}

export type CompletionResult =
  | { completed: true; row: JobDetailRow }
  /** The lease is not held (any more): nothing was written; the caller explains why. */
  | { completed: false; reason: 'lease_not_held' }
  /**
   * An intent of the response's objects was gone: the sweeper gave up on it (its deadline passed)
   * and may be deleting the object. Nothing was written; the report may be sent again.
   */
  | { completed: false; reason: 'intents_lost' };

/**
 * Transition `complete` for a batch, in one statement whatever its size and its responses: ends
 * each lease still held, records its attempt as succeeded and inserts its artifact rows. A
 * completion with artifacts also takes over their objects' intents (storage/offloaded-write.ts):
 * they are locked first (storage_intents_pkey), the job completes only when every one of them is
 * there, and they are deleted with it. Jobs are found by primary key (jobs_pkey, joined on the
 * batch), so no statistics can send the update to a secondary index. Answers in the batch's order.
 */
export async function completeLeases(
  db: Db,
  completions: readonly Completion[],
  now: Date,
): Promise<CompletionResult[]> {
  if (completions.length === 0) return [];
  const input = completions.map((c, i) => ({
    n: i,
    job_id: c.lease.jobId,
    organization_id: c.lease.organizationId,
    lease_token: c.lease.leaseToken,
    response: c.response,
    warnings: c.warnings,
    uris: c.artifacts.map((a) => a.storageUri),
  }));
  const allUris = input.flatMap((i) => i.uris);
  const artifacts = completions.flatMap((c) => toArtifactRows(c.lease.jobId, c.artifacts));
  const columns = sql.join(DETAIL_COLUMNS.map((c) => sql.ref(`jobs.${c}`)));
  const endedColumns = sql.join(DETAIL_COLUMNS.map((c) => sql.ref(`ended.${c}`)));
  const { rows } = await sql<{ intents_ready: boolean; ended: boolean } & JobDetailRow>`
    with input as materialized (
      -- json, not jsonb: the response is stored as the worker wrote it, keys in its order.
      select * from json_to_recordset(${JSON.stringify(input)}::json) as i(n int, job_id text,
        organization_id text, lease_token uuid, response json, warnings jsonb, uris text[])
    ), intents as materialized (
      select storage_uri from storage_intents where storage_uri = any(${allUris}::text[]) for update
    ), ready as (
      select i.* from input i
      where cardinality(i.uris) = (select count(*) from intents t where t.storage_uri = any(i.uris))
    ), ended as (
      update jobs set status = ${statusAfter('complete')}, lease_owner = null, lease_token = null,
        lease_expires_at = null, updated_at = ${now}, completed_at = ${now}, error = null,
        response = r.response, warnings = r.warnings
      from ready r
      where jobs.id = r.job_id and ${keyedOrganization(sql.raw('r.organization_id'))}
        and ${keyedJobStatusAllows('complete')} and jobs.lease_token = r.lease_token
      returning ${columns}, r.n, r.lease_token as ended_token, r.uris
    ), attempts as (
      update job_attempts set outcome = 'succeeded', finished_at = ${now}, error = null
      from ended where job_attempts.lease_token = ended.ended_token and job_attempts.outcome is null
    ), artifact_rows as (
      insert into job_artifacts (job_id, role, pointer, kind, storage_uri, byte_size, sha256, content_type)
      select a.job_id, a.role, a.pointer, a.kind, a.storage_uri, a.byte_size, a.sha256, a.content_type
      from jsonb_to_recordset(${JSON.stringify(artifacts)}::jsonb) as a(job_id text, role text,
        pointer text, kind text, storage_uri text, byte_size bigint, sha256 text, content_type text)
      where a.job_id in (select id from ended)
    ), claimed as (
      delete from storage_intents
      where storage_uri in (select unnest(ended.uris) from ended)
    )
    select input.n in (select n from ready) as intents_ready, ended.n is not null as ended, ${endedColumns}
    from input left join ended on ended.n = input.n
    order by input.n`.execute(db);
  return rows.map(({ intents_ready, ended, ...row }): CompletionResult => {
    if (ended) return { completed: true, row };
    return { completed: false, reason: intents_ready ? 'lease_not_held' : 'intents_lost' };
  });
}
