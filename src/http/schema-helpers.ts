import { Type } from '@sinclair/typebox';
import { StringEnum, StringMap } from '../domain/schema-types.js';

/** Query-string booleans: `true/false/1/0`, as curl users write them. */
export const QueryBoolean = (description: string) =>
  StringEnum(['true', 'false', '1', '0'] as const, { default: 'false', description });

export const isTrue = (value: string | undefined) => value === 'true' || value === '1';

/** What an error says: the `detail` of the error body, and the `error` of a refused report. */
export const ErrorDetail = Type.Object({
  code: Type.String(),
  message: Type.String(),
  details: Type.Optional(StringMap(Type.Unknown())),
});

export const ErrorBody = Type.Object(
  { detail: ErrorDetail },
  { description: 'The one shape of every error answer.' },
);

/** Response schemas for the error statuses a route can answer. */
export function errorResponses<const S extends readonly number[]>(...statuses: S) {
  return Object.fromEntries(statuses.map((s) => [s, ErrorBody])) as Record<S[number], typeof ErrorBody>;
}
