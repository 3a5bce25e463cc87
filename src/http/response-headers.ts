import type { FastifyReply } from 'fastify';

/**
 * Headers of every answer: the request id the logs carry, and no caching or content sniffing of
 * API answers (they hold a client's job data, and a shared cache must never keep one).
 */
export const API_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;

export function setApiHeaders(reply: FastifyReply, requestId: string) {
  reply.header('x-request-id', requestId);
  for (const [name, value] of Object.entries(API_HEADERS)) reply.header(name, value);
}
