import type { FastifyRequest } from 'fastify';
import { AppError } from '../domain/errors.js';

/**
 * The organization of the caller's key. Routes for clients only admit keys of an organization
 * (a fleet key, bound to none, is refused by their scope); this is where the type says so.
 */
export function ownOrganization(request: FastifyRequest): string {
  const { organizationId } = request.auth;
  if (organizationId === null)
    throw new AppError('forbidden', 'This route needs the API key of an organization.');
  return organizationId;
}
