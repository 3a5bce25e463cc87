import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { describe, expect, it } from 'vitest';
import { statusAfter, statusAllows } from '../../src/lifecycle/transition-sql.js';

const compiler = new Kysely<unknown>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});
const text = (expression: ReturnType<typeof statusAllows>) => expression.compile(compiler);

describe('the WHERE of a transition', () => {
  // The partial indexes of migrations 0001/0003 (jobs_claim_idx, jobs_lease_idx, jobs_expiry_idx)
  // serve a prepared statement's generic plan only when its text implies their predicate.
  it.each([
    ['claim', "status = 'queued'"],
    ['requeue', "status = 'in_progress'"],
    ['complete', "status = 'in_progress'"],
    ['expire', "status <> 'expired'"],
  ] as const)('of %s is the literal predicate of its partial index: %s', (transition, predicate) => {
    expect(text(statusAllows(transition))).toMatchObject({ sql: predicate, parameters: [] });
  });

  it('names every status a transition, or several, may start from', () => {
    expect(text(statusAllows('retry')).sql).toBe("status in ('failed', 'cancelled')");
    expect(text(statusAllows('cancel', 'requestCancellation')).sql).toBe(
      "status in ('validating', 'queued', 'in_progress')",
    );
  });

  it('writes the status a transition ends in as a literal', () => {
    expect(statusAfter('retry').compile(compiler)).toMatchObject({ sql: "'queued'", parameters: [] });
  });
});
