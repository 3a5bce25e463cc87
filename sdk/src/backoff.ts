export interface BackoffPolicy {
  /** Ceiling of the first delay, in ms; it doubles with each attempt. */
  initialMs: number;
  /** The ceiling never grows past this, in ms. */
  maxMs: number;
}

/**
 * The delay before retry number `attempt` (0 for the first): exponential backoff with "equal
 * jitter". The ceiling is min(maxMs, initialMs * 2^attempt) and the delay is drawn from its upper
 * half. Equal rather than full jitter: at least half the ceiling is always waited, so a retry never
 * follows a failure almost at once, while the random half still spreads out callers that failed
 * together. Whole milliseconds. `random` returns a number in [0, 1), like Math.random.
 */
export function backoffDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
