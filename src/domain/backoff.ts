export interface BackoffPolicy {
  baseSeconds: number;
  maxSeconds: number;
}

/**
 * Exponential backoff with equal jitter: a ceiling d = min(maxMs, baseMs * 2^step), and a delay
 * drawn uniformly in [d/2, d]. The random half spreads out what failed together (a dependency
 * outage, a database restart); the fixed half keeps a retry from coming back at once.
 * `step` is 0 for the first retry.
 */
export function backoffDelayMs(
  step: number,
  limits: { baseMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const ceilingMs = Math.min(limits.maxMs, limits.baseMs * 2 ** Math.min(Math.max(step, 0), 40));
  return Math.round(ceilingMs / 2 + random() * (ceilingMs / 2));
}

/** Delay before the next try of a job after `failures` counted failures (1 for the first). */
export function retryDelayMs(failures: number, policy: BackoffPolicy, random: () => number = Math.random) {
  return backoffDelayMs(
    failures - 1,
    { baseMs: policy.baseSeconds * 1000, maxMs: policy.maxSeconds * 1000 },
    random,
  );
}
