import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';

const DECIMAL_INTEGER = /^-?\d+$/;

/** Top-level properties of a schema that hold numbers. */
function numericProperties(schema: unknown): string[] {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> }).properties ?? {};
  return Object.entries(properties)
    .filter(([, property]) => property.type === 'integer' || property.type === 'number')
    .map(([name]) => name);
}

/**
 * Text parts (query strings, path parameters, headers) are coerced to their schema's types, with
 * one rule first: a number is written in decimal digits. Ajv coerces with Number(), which would
 * read `0x10` as 16, `1e1` as 10 and ` 5 ` as 5.
 */
function decimalNumbersOnly(validate: ValidateFunction, numeric: string[]) {
  const check = (data: unknown) => {
    const values = (data ?? {}) as Record<string, unknown>;
    for (const name of numeric) {
      const value = values[name];
      if (typeof value === 'string' && !DECIMAL_INTEGER.test(value)) {
        const error: ErrorObject = {
          instancePath: `/${name}`,
          schemaPath: `#/properties/${name}/type`,
          keyword: 'type',
          params: { type: 'integer' },
          message: 'must be a decimal integer',
        };
        check.errors = [error];
        return false;
      }
    }
    const valid = validate(data);
    check.errors = validate.errors;
    return valid;
  };
  check.errors = null as ErrorObject[] | null | undefined;
  return check;
}

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
  return ({ schema, httpPart }) => {
    if (httpPart === 'body') return bodyAjv.compile(schema as object);
    const validate = textAjv.compile(schema as object);
    const numeric = numericProperties(schema);
    return numeric.length === 0 ? validate : decimalNumbersOnly(validate, numeric);
  };
}
