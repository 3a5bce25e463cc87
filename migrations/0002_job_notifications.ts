import { type Kysely, sql } from 'kysely';

// Waiting clients and idle workers LISTEN instead of polling:
//   job_changed  payload = job id,       on insert and whenever status or cancelled changes;
//   job_queued   payload = job endpoint, when a job becomes queued (inserted so, or moved there).
// The WHEN clauses keep every other update (heartbeats, lease renewals) free of trigger calls.
// NOTIFY is transactional: listeners hear of a change only once it is committed and visible.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function jobs_notify() returns trigger language plpgsql as $$
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
  await sql`
    create trigger jobs_notify_insert after insert on jobs
    for each row execute function jobs_notify()
  `.execute(db);
  await sql`
    create trigger jobs_notify_update after update of status, cancelled on jobs
    for each row
    when (old.status is distinct from new.status or old.cancelled is distinct from new.cancelled)
    execute function jobs_notify()
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists jobs_notify_update on jobs`.execute(db);
  await sql`drop trigger if exists jobs_notify_insert on jobs`.execute(db);
  await sql`drop function if exists jobs_notify()`.execute(db);
}
