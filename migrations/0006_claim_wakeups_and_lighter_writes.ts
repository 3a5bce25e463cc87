import { type Kysely, sql } from 'kysely';

// Waiting claims are woken by job_queued. Its payload was the endpoint alone, so every waiting
// claimer of every organization woke (and ran a claim that found nothing) on every job queued
// anywhere; it is now `<organization_id> <endpoint>`, and a claimer wakes only for jobs it could
// take. (Ids and endpoints hold no spaces.) job_changed is unchanged: the job id.
//
// The metadata GIN index held two entries per job even when metadata is null; it now holds the
// jobs that have metadata (the list filter `metadata @> …` implies `metadata is not null`).
//
// Every job row is updated several times within seconds (claim, heartbeats, completion): autovacuum
// runs on jobs after 1% of its rows changed rather than 20%, so dead entries do not pile up at the
// head of jobs_claim_idx, and pages keep room for updates that change no indexed column.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create or replace function jobs_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('job_changed', new.id);
      if new.status = 'queued' then
        if tg_op = 'INSERT' then
          perform pg_notify('job_queued', new.organization_id || ' ' || new.endpoint);
        elsif old.status <> 'queued' then
          perform pg_notify('job_queued', new.organization_id || ' ' || new.endpoint);
        end if;
      end if;
      return null;
    end
    $$
  `.execute(db);
  await sql`drop index jobs_metadata_idx`.execute(db);
  await sql`create index jobs_metadata_idx on jobs using gin (metadata jsonb_path_ops)
    where metadata is not null`.execute(db);
  await sql`alter table jobs set (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table jobs reset (fillfactor, autovacuum_vacuum_scale_factor,
    autovacuum_vacuum_insert_scale_factor, autovacuum_analyze_scale_factor)`.execute(db);
  await sql`drop index jobs_metadata_idx`.execute(db);
  await sql`create index jobs_metadata_idx on jobs using gin (metadata jsonb_path_ops)`.execute(db);
  await sql`
    create or replace function jobs_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('job_changed', new.id);
      if new.status = 'queued' then
        if tg_op = 'INSERT' then
          perform pg_notify('job_queued', new.endpoint);
        elsif old.status <> 'queued' then
          perform pg_notify('job_queued', new.endpoint);
        end if;
      end if;
      return null;
    end
    $$
  `.execute(db);
}
