import type { FastifyInstance } from 'fastify';

/**
 * JSON only: any other body answers 415. A body-less POST with Content-Type: application/json
 * is accepted as "no body", as curl users send it.
 */
export function acceptJsonBodiesOnly(app: FastifyInstance) {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      const err = error as Error & { statusCode?: number };
      err.statusCode = 400;
      err.message = `The body is not valid JSON: ${err.message}`;
      done(err, undefined);
    }
  });
}
