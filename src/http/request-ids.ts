import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

// A request id from the gateway is kept when it looks like one; anything else is replaced, so
// a client cannot inject arbitrary text into every log line.
const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,200}$/;

/** Fastify's genReqId: the x-request-id the gateway sent, or a new UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}
