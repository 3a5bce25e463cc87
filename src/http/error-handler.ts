import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorCode } from '../domain/errors.js';
import { isDatabaseUnavailable, noteDatabaseUnavailable } from './database-errors.js';
import { validationError } from './validation-errors.js';

interface ErrorPayload {
  detail: { code: string; message: string; details?: Record<string, unknown> };
}

function payload(code: ErrorCode | string, message: string, details?: Record<string, unknown>): ErrorPayload {
  return { detail: details ? { code, message, details } : { code, message } };
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
  if (error.validation) {
    const invalid = validationError(error.validation, error.validationContext ?? 'body');
    return reply.status(400).send(payload(invalid.code, invalid.message, invalid.details));
  }
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
