import { AppError } from '../domain/errors.js';

// The endpoints whose request carries documents to work on. The server does not execute
// endpoints, but it refuses a job that no worker could run, before anything is stored.
const DOCUMENT_ENDPOINTS = new Set([
  '/v1/documents/extract',
  '/v1/documents/parse',
  '/v1/documents/split',
  '/v1/documents/classify',
]);

const invalid = (field: string, message: string) =>
  new AppError('unprocessable_entity', `Invalid request for this endpoint: '${field}' ${message}.`, {
    field,
  });

function checkDocument(value: unknown, field: string) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(field, 'must be an object with filename and url');
  }
  const { filename, url } = value as Record<string, unknown>;
  if (typeof filename !== 'string' || filename === '')
    throw invalid(`${field}.filename`, 'must be a non-empty string');
  if (typeof url !== 'string' || !/^(data:|https?:\/\/)/.test(url)) {
    throw invalid(`${field}.url`, 'must be a data: URL or an http(s) URL');
  }
}

/** Throws a 422 naming the field when `request` lacks what `endpoint` needs. */
export function checkEndpointRequirements(endpoint: string, request: Record<string, unknown>) {
  if (!DOCUMENT_ENDPOINTS.has(endpoint)) return;
  if (request.document !== undefined) return checkDocument(request.document, 'request.document');
  if (request.documents !== undefined) {
    if (!Array.isArray(request.documents) || request.documents.length === 0) {
      throw invalid('request.documents', 'must be a non-empty array of documents');
    }
    request.documents.forEach((d, i) => {
      checkDocument(d, `request.documents.${i}`);
    });
    return;
  }
  throw invalid('request.document', 'is required (or request.documents)');
}
