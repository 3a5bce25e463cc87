export { JobCancelledError, LeaseLostError, WorkerShutdownError } from './abort-reasons.js';
export { JobsClient, type JobsClientOptions } from './client.js';
export {
  type ApiErrorInit,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  ConnectionError,
  InternalServerError,
  JobsApiError,
  JobsError,
  NotFoundError,
  PayloadTooLargeError,
  PermissionDeniedError,
  RateLimitError,
  ServiceUnavailableError,
  TimeoutError,
  UnprocessableEntityError,
  UnsupportedMediaTypeError,
  WaitTimeoutError,
} from './errors.js';
export { describeHandlerError, NonRetryableError } from './handler-errors.js';
export { type HandlerResponse, toJobResponse } from './handler-result.js';
export { type FetchLike, HttpClient, type HttpClientOptions } from './http-client.js';
export type {
  CallOptions,
  JobPoller,
  RetrieveOptions,
  StatusNotModified,
  StatusOptions,
  StatusResult,
  StatusSnapshot,
} from './job-call-options.js';
export { type CreateOptions, type IterateParams, Jobs } from './jobs.js';
export { createConsoleLogger, type LogLevel, type WorkerLogger } from './logger.js';
export { MAX_REPORT_BATCH, ReportBatcher, type ReportBatcherOptions } from './report-batcher.js';
export * from './types.js';
export type { WaitForCompletionOptions } from './wait-for-completion.js';
export { createWorker, type JobContext, type JobHandler, type Worker, type WorkerOptions } from './worker.js';
export { type LeaseReports, WorkerApi, type WorkerApiOptions } from './worker-api.js';
