import { type Kysely, sql } from 'kysely';

// Fleet keys: held by the operator, bound to no organization, they may claim and report the jobs
// of every organization. Every other key belongs to exactly one organization.
//
// max_in_flight: at most this many of the organization's jobs in progress at once (null: no limit).
//
// claim_rotation: where a claim across organizations starts its round-robin, so that when more
// organizations have runnable jobs than a claim takes, successive claims serve different ones.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table api_keys drop constraint api_keys_scope_check`.execute(db);
  await sql`alter table api_keys add constraint api_keys_scope_check
    check (scope in ('client', 'worker', 'admin', 'fleet'))`.execute(db);
  await sql`alter table api_keys alter column organization_id drop not null`.execute(db);
  await sql`alter table api_keys add constraint api_keys_fleet_without_organization
    check ((scope = 'fleet') = (organization_id is null))`.execute(db);
  await sql`alter table organizations add column max_in_flight integer
    constraint organizations_max_in_flight_check check (max_in_flight >= 1)`.execute(db);
  await sql`create sequence claim_rotation as bigint cycle`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop sequence claim_rotation`.execute(db);
  await sql`alter table organizations drop column max_in_flight`.execute(db);
  await sql`delete from api_keys where scope = 'fleet'`.execute(db);
  await sql`alter table api_keys drop constraint api_keys_fleet_without_organization`.execute(db);
  await sql`alter table api_keys alter column organization_id set not null`.execute(db);
  await sql`alter table api_keys drop constraint api_keys_scope_check`.execute(db);
  await sql`alter table api_keys add constraint api_keys_scope_check
    check (scope in ('client', 'worker', 'admin'))`.execute(db);
}
