import { type TSchema, Type } from '@sinclair/typebox';

/** A string enum that validates with one clear message and shows as `enum` in OpenAPI. */
export const StringEnum = <const T extends readonly string[]>(
  values: T,
  options: Record<string, unknown> = {},
) => Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
