import type { JobResponse, JobWarning } from './types.js';

/** What a handler may return to say more than the body: a status code and warnings. */
export interface HandlerResponse<TBody = unknown> {
  status_code?: number;
  body: TBody;
  warnings?: JobWarning[];
}

const RESPONSE_KEYS = new Set(['status_code', 'body', 'warnings']);

/**
 * The rule for a handler's return value: a plain object that has a `body` key and no keys
 * other than `status_code`, `body` and `warnings` is the response itself (status_code defaults
 * to 200); any other value is the body of a 200 response. No value (undefined or null) is an
 * empty body, `{}`. To return a body that itself looks like `{body}`, wrap it:
 * `return { body: { body: ... } }`. A body must be a JSON object: anything else is sent as it is,
 * and the server's refusal fails the job with `invalid_handler_result`.
 */
export function toJobResponse(result: unknown): { response: JobResponse; warnings?: JobWarning[] } {
  if (typeof result === 'object' && result !== null && !Array.isArray(result) && 'body' in result) {
    const keys = Object.keys(result);
    if (keys.every((key) => RESPONSE_KEYS.has(key))) {
      const { status_code, body, warnings } = result as HandlerResponse;
      const response = { status_code: status_code ?? 200, body: body ?? {} };
      return warnings ? { response, warnings } : { response };
    }
  }
  return { response: { status_code: 200, body: result ?? {} } };
}
