import { type Static, Type } from '@sinclair/typebox';
import { Nullable } from '../domain/schema-types.js';

export const MetadataInputSchema = Type.Unsafe<Record<string, string>>({
  type: 'object',
  maxProperties: 16,
  propertyNames: { maxLength: 64 },
  additionalProperties: { type: 'string', maxLength: 512 },
  description: 'At most 16 pairs; keys up to 64 characters, string values up to 512.',
});

export const CreateJobBodySchema = Type.Object(
  {
    endpoint: Type.String({
      minLength: 1,
      maxLength: 200,
      description: "The endpoint to run, e.g. '/v1/documents/extract' (the '/v1' prefix is optional).",
    }),
    request: Type.Record(Type.String(), Type.Unknown(), {
      description: 'The body the endpoint receives. Large data: URLs are stored in object storage.',
    }),
    metadata: Type.Optional(Nullable(MetadataInputSchema)),
    max_attempts: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'Executions allowed before the job fails (default from the server).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreateJobBody = Static<typeof CreateJobBodySchema>;

export const CreateJobHeadersSchema = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x21-\\x7E]+$',
      description: 'The same key with the same body returns the original job instead of creating another.',
    }),
  ),
});
