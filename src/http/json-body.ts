import type { FastifyInstance } from 'fastify';
import { AppError } from '../domain/errors.js';
import { findUnstorableJson } from './storable-json.js';

/**
 * JSON only: any other body answers 415. A body-less POST with Content-Type: application/json
 * is accepted as "no body", as curl users send it. A body the database could not store, or
 * nested deeper than `maxDepth`, answers 400 naming the field, before any route sees it.
 */
export function acceptJsonBodiesOnly(app: FastifyInstance, limits: { maxDepth: number }) {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      const err = error as Error & { statusCode?: number };
      err.statusCode = 400;
      err.message = `The body is not valid JSON: ${err.message}`;
      return done(err, undefined);
    }
    const problem = findUnstorableJson(parsed, limits.maxDepth);
    if (!problem) return done(null, parsed);
    const message = problem.field
      ? `Invalid body field '${problem.field}': ${problem.reason}.`
      : `Invalid body: ${problem.reason}.`;
    done(
      new AppError('invalid_request', message, { location: 'body', field: problem.field || null }),
      undefined,
    );
  });
}
