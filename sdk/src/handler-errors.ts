import type { JobError } from './types.js';

/**
 * Thrown by a handler when trying again cannot help (bad input, unsupported document): the job
 * fails at once instead of being retried. Any error with `retryable: false` has the same effect.
 */
export class NonRetryableError extends Error {
  override name = 'NonRetryableError';
  readonly retryable = false as const;
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    message: string,
    options: { code?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = options.code ?? 'handler_error';
    this.details = options.details;
  }
}

const MAX_CODE_LENGTH = 100;
const MAX_MESSAGE_LENGTH = 10_000;

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * How a thrown value is reported: retryable unless it says `retryable: false`; its code is
 * `error.code` when that is a non-empty string (at most 100 characters), else 'handler_error';
 * its details are `error.details` when that is a plain object.
 */
export function describeHandlerError(error: unknown): { error: JobError; retryable: boolean } {
  const fields =
    isPlainObject(error) || error instanceof Error ? (error as unknown as Record<string, unknown>) : {};
  const code =
    typeof fields.code === 'string' && fields.code !== '' && fields.code.length <= MAX_CODE_LENGTH
      ? fields.code
      : 'handler_error';
  const rawMessage =
    error instanceof Error
      ? error.message
      : typeof fields.message === 'string'
        ? fields.message
        : String(error);
  const message = (rawMessage || 'The handler failed without a message.').slice(0, MAX_MESSAGE_LENGTH);
  const details = isPlainObject(fields.details) ? fields.details : undefined;
  return {
    error: details ? { code, message, details } : { code, message },
    retryable: fields.retryable !== false,
  };
}
