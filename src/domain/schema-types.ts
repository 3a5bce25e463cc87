import { type Static, type TSchema, Type } from '@sinclair/typebox';

/** A string enum that validates with one clear message and shows as `enum` in OpenAPI. */
export const StringEnum = <const T extends readonly string[]>(
  values: T,
  options: Record<string, unknown> = {},
) => Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/**
 * An object with any keys, each holding `value`. Not `Type.Record(Type.String(), …)`: that becomes
 * `patternProperties: {"^.*$": …}`, and the response serializer then drops every key with a line
 * break in it (`.` does not match one), silently, from metadata, pointers and error details.
 */
export const StringMap = <T extends TSchema>(value: T, options: Record<string, unknown> = {}) =>
  Type.Unsafe<Record<string, Static<T>>>({ ...options, type: 'object', additionalProperties: value });
