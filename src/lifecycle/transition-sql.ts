import { type RawBuilder, sql } from 'kysely';
import { JOB_STATUSES, type JobStatus } from '../domain/job-statuses.js';
import { JOB_TRANSITIONS, type JobTransition } from '../domain/job-transitions.js';

/**
 * The WHERE condition of a transition: the job's status is one of the statuses the transitions
 * may start from (JOB_TRANSITIONS). The statuses are written as literals, not parameters: the
 * partial indexes (jobs_claim_idx `where status = 'queued'`, jobs_lease_idx `where status =
 * 'in_progress'`, jobs_expiry_idx `where status <> 'expired'`) can only serve a prepared statement's generic plan when the statement's text
 * itself implies their predicate.
 */
export function statusAllows(...transitions: JobTransition[]): RawBuilder<boolean> {
  return statusOf(sql.raw('status'), transitions);
}

/**
 * statusAllows for a statement that finds its jobs by primary key (a batch joined on jobs_pkey):
 * the status is written as an expression no index serves. Otherwise, when statistics say few
 * jobs are in progress (after a bulk load, before autovacuum), the planner walks
 * jobs_org_status_created_idx or jobs_lease_idx through every in-progress entry, dead ones
 * included, for each row of the batch.
 */
export function keyedJobStatusAllows(...transitions: JobTransition[]): RawBuilder<boolean> {
  return statusOf(sql.raw("(jobs.status || '')"), transitions);
}

/** The caller's organization, or any for a fleet key (null); an expression no index serves, as above. */
export const keyedOrganization = (column: RawBuilder<unknown>) =>
  sql<boolean>`(${column} is null or (jobs.organization_id || '') = ${column})`;

/** statusAllows for a statement that names jobs `j`. */
export function jobAliasStatusAllows(...transitions: JobTransition[]): RawBuilder<boolean> {
  return statusOf(sql.raw('j.status'), transitions);
}

function statusOf(column: RawBuilder<unknown>, transitions: JobTransition[]): RawBuilder<boolean> {
  const from = [...new Set<JobStatus>(transitions.flatMap((t) => JOB_TRANSITIONS[t].from))];
  // Every status but one: the form of jobs_expiry_idx `where status <> 'expired'`.
  const others = JOB_STATUSES.filter((status) => !from.includes(status));
  if (others.length === 1) return sql<boolean>`${column} <> ${sql.lit(others[0])}`;
  if (from.length === 1) return sql<boolean>`${column} = ${sql.lit(from[0])}`;
  return sql<boolean>`${column} in (${sql.join(from.map((status) => sql.lit(status)))})`;
}

/** The status a transition ends in, as a literal of the statement's text. */
export const statusAfter = (transition: JobTransition): RawBuilder<JobStatus> =>
  sql<JobStatus>`${sql.lit(JOB_TRANSITIONS[transition].to)}`;
