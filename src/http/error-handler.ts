import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorCode } from '../domain/errors.js';
import { isDatabaseUnavailable, noteDatabaseUnavailable } from './database-errors.js';

interface ErrorPayload {
  detail: { code: string; message: string; details?: Record<string, unknown> };
}

function payload(code: ErrorCode | string, message: string, details?: Record<string, unknown>): ErrorPayload {
  return { detail: details ? { code, message, details } : { code, message } };
}

const LOCATION: Record<string, string> = {
  querystring: 'query parameter',
  params: 'path parameter',
  body: 'body field',
  headers: 'header',
};

/** One precise sentence for the first schema violation, naming the field. */
function validationPayload(error: FastifyError): ErrorPayload {
  const context = error.validationContext ?? 'body';
  const first = error.validation?.[0];
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
    return payload('invalid_request', 'The request body must be a JSON object.', {
      location: 'body',
      field: null,
    });
  }
  const where = LOCATION[context] ?? context;
  const message = field ? `Invalid ${where} '${field}': ${reason}.` : `Invalid ${context}: ${reason}.`;
  return payload('invalid_request', message, { location: context, field: field || null });
}

export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof AppError) {
    if (error.statusCode >= 500 && error.cause !== undefined) {
      // A storage failure reached the handler through app.store, whose tracker already logged
      // the outage once (storage/monitored-store.ts): one line per outage, not a stack per request.
      const storageDown = error.cause instanceof Error && error.cause.name.endsWith('StorageError');
      if (storageDown) request.log.debug({ err: error.cause }, error.message);
      else request.log.error({ err: error.cause }, error.message);
    }
    return reply.status(error.statusCode).send(payload(error.code, error.message, error.details));
  }
  if (error.validation) return reply.status(400).send(validationPayload(error));
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return reply
      .status(413)
      .send(
        payload(
          'payload_too_large',
          `The request body is larger than the limit of ${request.routeOptions.bodyLimit} bytes.`,
        ),
      );
  }
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return reply.status(415).send(payload('unsupported_media_type', 'Send the body as application/json.'));
  }
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    // Fastify's own client errors (malformed JSON, bad content-length, …) carry clear messages.
    const code = error.statusCode === 400 ? 'invalid_request' : `http_${error.statusCode}`;
    return reply.status(error.statusCode).send(payload(code, error.message));
  }
  if (isDatabaseUnavailable(error)) {
    noteDatabaseUnavailable(request, reply, error);
    return reply
      .status(503)
      .send(payload('service_unavailable', 'The database is unavailable; try again shortly.'));
  }
  request.log.error({ err: error }, 'unexpected error');
  return reply
    .status(500)
    .send(payload('internal_error', 'An unexpected error occurred; it has been logged.'));
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply) {
  return reply
    .status(404)
    .send(payload('not_found', `No route for ${request.method} ${request.url.split('?')[0]}.`));
}
