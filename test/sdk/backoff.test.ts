import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../sdk/src/backoff.js';

const policy = { initialMs: 500, maxMs: 8_000 };
const lowest = () => 0;
const highest = () => 0.999_999;

describe('backoffDelayMs', () => {
  it('doubles the ceiling with each attempt and waits between half of it and all of it', () => {
    expect([0, 1, 2, 3, 4].map((attempt) => backoffDelayMs(attempt, policy, lowest))).toEqual([
      250, 500, 1_000, 2_000, 4_000,
    ]);
    expect([0, 1, 2, 3, 4].map((attempt) => backoffDelayMs(attempt, policy, highest))).toEqual([
      500, 1_000, 2_000, 4_000, 8_000,
    ]);
    expect(backoffDelayMs(2, policy, () => 0.5)).toBe(1_500);
  });

  it('never lets the ceiling grow past maxMs, however many attempts failed', () => {
    for (const attempt of [5, 10, 100, 2_000]) {
      expect(backoffDelayMs(attempt, policy, lowest)).toBe(4_000);
      expect(backoffDelayMs(attempt, policy, highest)).toBe(8_000);
    }
  });

  it('answers whole milliseconds and uses Math.random by default', () => {
    const delays = Array.from({ length: 200 }, () => backoffDelayMs(1, { initialMs: 3, maxMs: 100 }));
    for (const delay of delays) {
      expect(Number.isInteger(delay)).toBe(true);
      expect(delay).toBeGreaterThanOrEqual(3);
      expect(delay).toBeLessThanOrEqual(6);
    }
    expect(new Set(delays).size).toBeGreaterThan(1);
  });
});
