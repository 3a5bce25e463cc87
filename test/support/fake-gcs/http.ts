/**
 * Plumbing every route shares: reading a request, writing JSON answers and errors in the shape
 * of the GCS JSON API, and the error type a handler throws to answer with a status.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Thrown by a handler to answer with this status and a GCS-shaped error body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=UTF-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

const REASONS: Record<number, string> = {
  400: 'invalid',
  401: 'required',
  403: 'forbidden',
  404: 'notFound',
  408: 'requestTimeout',
  412: 'conditionNotMet',
  416: 'requestedRangeNotSatisfiable',
  429: 'rateLimitExceeded',
  503: 'backendError',
};

/** The error shape of the JSON API, which the client turns into an ApiError with `code`. */
export function sendError(res: ServerResponse, status: number, message: string): void {
  const reason = REASONS[status] ?? (status >= 500 ? 'backendError' : 'invalid');
  sendJson(res, status, {
    error: { code: status, message, errors: [{ message, domain: 'global', reason }] },
  });
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The first value of a request header; Node gives an array for the few that may repeat. */
export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Aborts once the response is closed: sent, or the client hung up. */
export function closedSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => controller.abort());
  return controller.signal;
}
