import { Ajv } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';

/**
 * Query strings, path parameters and headers arrive as text, so their values are coerced to
 * the schema's types ("5" -> 5). A JSON body already has types: coercing it would accept
 * `{"max_attempts": "5"}` or a metadata value of 1, so body schemas are compiled without it.
 */
export function createValidatorCompiler(): FastifySchemaCompiler<unknown> {
  // verbose: errors carry their schema, so a message can quote the field's description.
  const common = {
    useDefaults: true,
    removeAdditional: false,
    allErrors: false,
    strict: false,
    verbose: true,
  } as const;
  const textAjv = new Ajv({ ...common, coerceTypes: 'array' });
  const bodyAjv = new Ajv({ ...common, coerceTypes: false });
  return ({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object);
}
