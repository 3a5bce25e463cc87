export interface BackoffPolicy {
  baseSeconds: number;
  maxSeconds: number;
}

/**
 * Delay before the next try after `failures` counted failures (1 for the first), with equal
 * jitter: a ceiling d = min(max, base * 2^(failures - 1)), and a delay drawn uniformly in
 * [d/2, d]. The random half spreads out jobs that failed together (a dependency outage);
 * the fixed half keeps a retry from coming back at once.
 */
export function retryDelayMs(failures: number, policy: BackoffPolicy, random: () => number = Math.random) {
  const exponent = Math.min(Math.max(failures, 1) - 1, 40);
  const ceilingMs = Math.min(policy.maxSeconds, policy.baseSeconds * 2 ** exponent) * 1000;
  return Math.round(ceilingMs / 2 + random() * (ceilingMs / 2));
}
