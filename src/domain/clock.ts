/**
 * The time recorded in rows (created_at, leases, backoffs, expiry). Tests move it forward to make
 * leases and retention run out; real waits (long polls, timeouts) measure elapsed time instead.
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
