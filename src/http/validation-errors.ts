import { AppError } from '../domain/errors.js';

/** A schema violation as Ajv reports it (Fastify's `error.validation` items). */
export interface ValidationIssue {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

const LOCATION: Record<string, string> = {
  querystring: 'query parameter',
  params: 'path parameter',
  body: 'body field',
  headers: 'header',
  report: 'report field',
};

/**
 * One precise sentence for the first schema violation, naming the field: what every route
 * answers for input its schema refuses, and each report of a batch (context `report`).
 */
export function validationError(errors: readonly ValidationIssue[], context: string): AppError {
  const first = errors[0];
  const params = (first?.params ?? {}) as Record<string, unknown>;
  let field = (first?.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.');
  if (first?.keyword === 'required')
    field = [field, String(params.missingProperty)].filter(Boolean).join('.');
  if (first?.keyword === 'additionalProperties') {
    field = [field, String(params.additionalProperty)].filter(Boolean).join('.');
  }
  let reason = first?.message ?? 'is invalid';
  if (first?.keyword === 'enum') reason = `must be one of: ${(params.allowedValues as unknown[]).join(', ')}`;
  if (first?.keyword === 'required') reason = 'is required';
  const description = (first as { parentSchema?: { description?: unknown } } | undefined)?.parentSchema
    ?.description;
  if (first?.keyword === 'pattern' && typeof description === 'string') {
    reason = `expected ${description.charAt(0).toLowerCase()}${description.slice(1).replace(/\.$/, '')}`;
  }
  if (first?.keyword === 'additionalProperties') reason = 'is not allowed';
  if (context === 'body' && !field && first?.keyword === 'type') {
    return new AppError('invalid_request', 'The request body must be a JSON object.', {
      location: 'body',
      field: null,
    });
  }
  const where = LOCATION[context] ?? context;
  const message = field ? `Invalid ${where} '${field}': ${reason}.` : `Invalid ${context}: ${reason}.`;
  return new AppError('invalid_request', message, { location: context, field: field || null });
}
