/** How one claim of a job ended; drives the TypeScript type, the schema enum and the SQL CHECK. */
export const ATTEMPT_OUTCOMES = [
  'succeeded',
  'failed',
  'lease_expired',
  'cancelled',
  'released',
  'expired',
] as const;
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];
