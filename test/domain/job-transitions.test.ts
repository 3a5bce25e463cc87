import { describe, expect, it } from 'vitest';
import { JOB_TRANSITIONS, LEASE_END_TRANSITIONS } from '../../src/domain/job-transitions.js';

// The lifecycle of the API contract, written out here on its own (not derived from the code it
// checks): validating -> queued -> in_progress -> completed | failed; cancelled from validating,
// queued or (cooperatively) in_progress; back to queued when a lease runs out or a retryable
// failure has attempts left; expired from any status; a terminal job changes again only by an
// explicit retry of a failed or cancelled job (or by expiring).
const CONTRACT = new Set([
  'validating->queued',
  'queued->in_progress',
  'in_progress->completed',
  'in_progress->failed',
  'in_progress->queued',
  'validating->cancelled',
  'queued->cancelled',
  'in_progress->cancelled',
  'failed->queued',
  'cancelled->queued',
  ...['validating', 'queued', 'in_progress', 'completed', 'failed', 'cancelled'].map((s) => `${s}->expired`),
]);
const TERMINAL = ['completed', 'failed', 'cancelled', 'expired'];

const moves = Object.entries(JOB_TRANSITIONS).flatMap(([name, t]) =>
  (t.from as readonly string[])
    .filter((from) => from !== t.to)
    .map((from) => ({ name, move: `${from}->${t.to}` })),
);

describe('JOB_TRANSITIONS', () => {
  it('allows only status changes the contract allows', () => {
    expect(moves.filter(({ move }) => !CONTRACT.has(move))).toEqual([]);
  });

  it('changes a terminal job only by a retry of a failed or cancelled job, or by expiring it', () => {
    const fromTerminal = moves.filter(({ move }) => TERMINAL.includes(move.split('->')[0]));
    expect(fromTerminal.filter(({ name }) => name !== 'retry' && name !== 'expire')).toEqual([]);
    expect(moves.filter(({ move }) => move.startsWith('expired->'))).toEqual([]);
  });

  it('has a way out of every non-terminal status, and expires every other status', () => {
    for (const status of ['validating', 'queued', 'in_progress']) {
      expect(moves.some(({ move }) => move.startsWith(`${status}->`) && !move.endsWith('->expired'))).toBe(
        true,
      );
    }
    expect(JOB_TRANSITIONS.expire.from).toEqual([
      'validating',
      'queued',
      'in_progress',
      'completed',
      'failed',
      'cancelled',
    ]);
  });

  it('ends a lease only from in_progress, into the status the lease end names', () => {
    for (const [status, transition] of Object.entries(LEASE_END_TRANSITIONS)) {
      expect(JOB_TRANSITIONS[transition]).toEqual({ from: ['in_progress'], to: status });
    }
  });
});
