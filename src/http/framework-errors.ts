import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorCode } from '../domain/errors.js';
import { API_HEADERS, setApiHeaders } from './response-headers.js';

const errorBody = (code: ErrorCode, message: string) => JSON.stringify({ detail: { code, message } });

/**
 * Errors the router raises before a route exists (Fastify's `frameworkErrors`): a path that is
 * not a valid URL, a path parameter longer than the router keeps. Answered in the one error
 * shape; the path is not echoed (it can be long, and it is the client's own).
 */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  setApiHeaders(reply, request.id);
  reply.type('application/json; charset=utf-8');
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return reply
      .status(414)
      .send(errorBody('uri_too_long', 'A path parameter of this URL is longer than 100 characters.'));
  }
  if (error.code === 'FST_ERR_BAD_URL') {
    return reply
      .status(400)
      .send(
        errorBody('invalid_request', 'The path is not a valid URL: it holds a malformed percent-encoding.'),
      );
  }
  request.log.error({ err: error }, 'unexpected router error');
  return reply
    .status(500)
    .send(errorBody('internal_error', 'An unexpected error occurred; it has been logged.'));
}

const CLIENT_ERRORS: Record<string, { status: number; code: ErrorCode; message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    code: 'request_timeout',
    message: 'The request did not arrive in time (REQUEST_TIMEOUT_SECONDS): send it again, whole.',
  },
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: 'headers_too_large',
    message: 'The request headers are larger than the server accepts.',
  },
};

/**
 * Errors Node's HTTP parser raises before a request exists (Fastify's `clientErrorHandler`): a
 * malformed request, headers too large, a request that did not arrive in time. Written straight
 * to the socket, in the one error shape, with a request id of its own; then the socket closes.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket) {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const known = CLIENT_ERRORS[error.code ?? ''] ?? {
    status: 400,
    code: 'invalid_request',
    message: 'The request is not valid HTTP.',
  };
  if (socket.writable) {
    const body = errorBody(known.code, known.message);
    const headers = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
      'x-request-id': randomUUID(),
      ...API_HEADERS,
    };
    const head = Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.write(`HTTP/1.1 ${known.status} ${STATUS_CODES[known.status]}\r\n${head}\r\n${body}`);
  }
  socket.destroy(error);
}
