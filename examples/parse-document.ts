import { NonRetryableError } from '../sdk/src/index.js';

/** The MIME types this example can read as text. */
export const SUPPORTED_TYPES = ['text/plain', 'text/markdown', 'text/csv', 'application/json'] as const;

export interface ParsedDocument {
  filename: string;
  text: string;
  word_count: number;
  line_count: number;
}

interface DataUrl {
  mimeType: string;
  bytes: Buffer;
}

/** `data:[<mime>][;param=value]*[;base64],<data>` (RFC 2397). */
function decodeDataUrl(url: string): DataUrl {
  const match = /^data:([^,]*),(.*)$/s.exec(url);
  if (!match) {
    throw new NonRetryableError('document.url is not a data: URL; this worker reads only data: URLs.', {
      code: 'unsupported_document_url',
      details: { scheme: url.split(':', 1)[0] },
    });
  }
  const [, header = '', data = ''] = match;
  const params = header.split(';');
  const base64 = params.at(-1)?.toLowerCase() === 'base64';
  const mimeType = (params[0] || 'text/plain').trim().toLowerCase();
  try {
    return { mimeType, bytes: base64 ? Buffer.from(data, 'base64') : Buffer.from(decodeURIComponent(data)) };
  } catch {
    throw new NonRetryableError('document.url is not a valid data: URL.', { code: 'invalid_data_url' });
  }
}

function countLines(text: string): number {
  if (text === '') return 0;
  const breaks = text.match(/\r\n|\r|\n/g)?.length ?? 0;
  // A final line break ends the last line rather than starting a new one.
  return /(\r\n|\r|\n)$/.test(text) ? breaks : breaks + 1;
}

/**
 * The /v1/documents/parse endpoint for small text documents: decodes `request.document.url`
 * and answers its text with word and line counts. Other MIME types and invalid input fail
 * non-retryably: trying again would give the same answer.
 */
export function parseDocument(request: unknown): ParsedDocument {
  const document = (request as { document?: { filename?: unknown; url?: unknown } } | null)?.document;
  if (!document || typeof document.url !== 'string') {
    throw new NonRetryableError('request.document.url is required.', { code: 'invalid_request' });
  }
  const filename = typeof document.filename === 'string' ? document.filename : 'document';
  const { mimeType, bytes } = decodeDataUrl(document.url);
  if (!(SUPPORTED_TYPES as readonly string[]).includes(mimeType)) {
    throw new NonRetryableError(`Documents of type '${mimeType}' cannot be parsed by this worker.`, {
      code: 'unsupported_document_type',
      details: { mime_type: mimeType, supported: [...SUPPORTED_TYPES] },
    });
  }
  const text = new TextDecoder('utf-8').decode(bytes);
  if (mimeType === 'application/json') {
    try {
      JSON.parse(text);
    } catch (error) {
      throw new NonRetryableError(`The document is not valid JSON: ${(error as Error).message}`, {
        code: 'invalid_document',
      });
    }
  }
  return {
    filename,
    text,
    word_count: text.split(/\s+/).filter((word) => word !== '').length,
    line_count: countLines(text),
  };
}
