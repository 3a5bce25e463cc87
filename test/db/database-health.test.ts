import { describe, expect, it } from 'vitest';
import { createDatabaseHealth } from '../../src/db/database-health.js';

function tracker() {
  const lines: { level: 'warn' | 'info'; fields: Record<string, unknown>; msg: string }[] = [];
  let now = 1000;
  const health = createDatabaseHealth(
    {
      warn: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', fields, msg }),
      info: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'info', fields, msg }),
    } as never,
    () => now,
  );
  return { health, lines, advance: (ms: number) => (now += ms), now: () => now };
}

const terminated = () => new Error('Connection terminated unexpectedly');

describe('database health', () => {
  it('warns once when the database goes away, and logs once when a new connection succeeds', () => {
    const { health, lines, advance } = tracker();
    health.connected();
    expect(lines).toEqual([]);
    for (let i = 0; i < 100; i++) health.failed(terminated());
    health.failed(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }));
    expect(health.available).toBe(false);
    expect(lines).toEqual([
      {
        level: 'warn',
        fields: { reason: 'Connection terminated unexpectedly' },
        msg: 'database unavailable: requests answer 503 until a new connection succeeds',
      },
    ]);
    advance(2500);
    health.connected();
    health.connected();
    expect(health.available).toBe(true);
    expect(lines.slice(1)).toEqual([
      { level: 'info', fields: { unavailable_ms: 2500 }, msg: 'database available again' },
    ]);
  });

  it('is not told of errors that do not say the database is away', () => {
    const { health, lines } = tracker();
    health.failed(Object.assign(new Error('duplicate key value'), { code: '23505' }));
    health.failed(
      Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }),
    );
    health.failed(new Error('boom'));
    expect(health.available).toBe(true);
    expect(lines).toEqual([]);
  });

  it('ignores the failure of a call begun before the database came back', () => {
    const { health, lines, advance, now } = tracker();
    const queuedAt = now();
    health.failed(terminated());
    advance(100);
    health.connected();
    advance(100);
    // A checkout queued during the outage times out now: the outage it saw is over.
    health.failed(new Error('timeout exceeded when trying to connect'), queuedAt);
    expect(health.available).toBe(true);
    health.failed(new Error('timeout exceeded when trying to connect'), now());
    expect(health.available).toBe(false);
    expect(lines.map((l) => l.level)).toEqual(['warn', 'info', 'warn']);
  });
});
