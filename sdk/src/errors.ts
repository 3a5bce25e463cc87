import type { JobStatusView } from './types.js';

/** Base of every error the SDK throws on its own account. */
export class JobsError extends Error {
  override name = 'JobsError';
}

export interface ApiErrorInit {
  status: number;
  code: string;
  message: string;
  details?: Record<string, unknown>;
  requestId?: string;
  headers?: Headers;
}

/** The server answered with an error status: `{"detail": {"code", "message", "details"}}`. */
export class JobsApiError extends JobsError {
  override name = 'JobsApiError';
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;
  /** The server's x-request-id: quote it when reporting a problem. */
  readonly requestId: string | undefined;
  readonly headers: Headers | undefined;

  constructor(init: ApiErrorInit) {
    super(init.message);
    this.status = init.status;
    this.code = init.code;
    this.details = init.details;
    this.requestId = init.requestId;
    this.headers = init.headers;
  }
}

export class BadRequestError extends JobsApiError {
  override name = 'BadRequestError';
}
export class AuthenticationError extends JobsApiError {
  override name = 'AuthenticationError';
}
export class PermissionDeniedError extends JobsApiError {
  override name = 'PermissionDeniedError';
}
export class NotFoundError extends JobsApiError {
  override name = 'NotFoundError';
}
export class ConflictError extends JobsApiError {
  override name = 'ConflictError';
}
export class PayloadTooLargeError extends JobsApiError {
  override name = 'PayloadTooLargeError';
}
export class UnsupportedMediaTypeError extends JobsApiError {
  override name = 'UnsupportedMediaTypeError';
}
export class UnprocessableEntityError extends JobsApiError {
  override name = 'UnprocessableEntityError';
}
export class RateLimitError extends JobsApiError {
  override name = 'RateLimitError';
}
export class InternalServerError extends JobsApiError {
  override name = 'InternalServerError';
}
export class ServiceUnavailableError extends InternalServerError {
  override name = 'ServiceUnavailableError';
}

const BY_STATUS: Record<number, new (init: ApiErrorInit) => JobsApiError> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  415: UnsupportedMediaTypeError,
  422: UnprocessableEntityError,
  429: RateLimitError,
  503: ServiceUnavailableError,
};

/** The most specific error class for an answer's status. */
export function apiErrorFor(init: ApiErrorInit): JobsApiError {
  const ErrorClass = BY_STATUS[init.status] ?? (init.status >= 500 ? InternalServerError : JobsApiError);
  return new ErrorClass(init);
}

/** The server could not be reached, or the connection broke before a full answer arrived. */
export class ConnectionError extends JobsError {
  override name = 'ConnectionError';
}

/** Something took longer than allowed: one HTTP request (timeoutMs), or a wait for a job. */
export class TimeoutError extends JobsError {
  override name = 'TimeoutError';
}

/** waitForCompletion ran out of time; `lastStatus` is the last state seen. */
export class WaitTimeoutError extends TimeoutError {
  override name = 'WaitTimeoutError';
  constructor(
    readonly jobId: string,
    readonly lastStatus: JobStatusView,
    readonly timeoutSeconds: number,
  ) {
    super(`Job '${jobId}' is still ${lastStatus.status} after ${timeoutSeconds} s.`);
  }
}
