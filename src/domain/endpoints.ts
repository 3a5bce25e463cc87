/** The endpoints a job may target (the seed's enum). Operators add more with EXTRA_ENDPOINTS. */
export const BUILTIN_ENDPOINTS = [
  '/v1/documents/extract',
  '/v1/documents/parse',
  '/v1/documents/split',
  '/v1/documents/classify',
  '/v1/schemas/generate',
  '/v1/edit/agent/fill',
  '/v1/edit/templates/fill',
  '/v1/edit/templates/generate',
  '/v1/evals/extract/process',
  '/v1/evals/split/process',
  '/v1/evals/classify/process',
  '/v1/evals/extract/extract',
  '/v1/evals/extract/split',
] as const;

/** Accepts an endpoint with or without its `/v1` prefix; answers the stored form, or undefined. */
export function normaliseEndpoint(endpoint: string, allowed: ReadonlySet<string>): string | undefined {
  const withPrefix = endpoint.startsWith('/v1/')
    ? endpoint
    : `/v1${endpoint.startsWith('/') ? '' : '/'}${endpoint}`;
  return allowed.has(withPrefix) ? withPrefix : undefined;
}
