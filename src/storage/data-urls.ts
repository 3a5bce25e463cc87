import { encodePointer } from './json-pointer.js';

/** A base64 data URL (RFC 2397): its media type is the first group, the payload follows the match. */
export const DATA_URL = /^data:([^,]*?);base64,/;

const WHITESPACE = /[\t\n\f\r ]/;

/**
 * Whether a data URL's payload decodes as base64, as decoders read it: the standard or the
 * URL-safe alphabet, padding only at the end (however much), whitespace skipped, and not one
 * character too many (a last lone character carries less than a byte). Valid but not canonical
 * payloads are kept inline by the offloader, so they come back exactly as sent.
 */
export function isBase64(payload: string): boolean {
  const compact = WHITESPACE.test(payload) ? payload.replace(/[\t\n\f\r ]+/g, '') : payload;
  const match = /^([A-Za-z0-9+/_-]*)=*$/.exec(compact);
  return match !== null && match[1].length % 4 !== 1;
}

/**
 * The JSON pointer of the first `data:…;base64,` string of `document` whose payload is not
 * base64, or undefined. Such a value could be neither offloaded nor restored byte for byte.
 */
export function findInvalidDataUrl(document: unknown): string | undefined {
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value: document, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop() as { value: unknown; path: (string | number)[] };
    if (typeof value === 'string') {
      const match = DATA_URL.exec(value);
      if (match && !isBase64(value.slice(match[0].length))) return encodePointer(path);
    } else if (value !== null && typeof value === 'object') {
      // Pushed last to first, so the first broken value in document order is the one named.
      const entries = Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, item] = entries[i];
        stack.push({ value: item, path: [...path, Array.isArray(value) ? Number(key) : key] });
      }
    }
  }
  return undefined;
}
