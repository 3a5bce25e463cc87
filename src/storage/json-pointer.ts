/** RFC 6901 JSON pointers: the address of an offloaded value inside its document. */

export function encodePointer(segments: readonly (string | number)[]): string {
  return segments.map((s) => `/${String(s).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

export function decodePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`invalid JSON pointer '${pointer}'`);
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/**
 * Sets the value at `pointer` inside `document` and returns the document (a new root when the
 * pointer is ''). Returns undefined when the parent of the pointer does not exist.
 */
export function setAtPointer(
  document: unknown,
  pointer: string,
  value: unknown,
): { root: unknown } | undefined {
  const segments = decodePointer(pointer);
  if (segments.length === 0) return { root: value };
  let parent: unknown = document;
  for (const segment of segments.slice(0, -1)) {
    if (parent === null || typeof parent !== 'object') return undefined;
    parent = (parent as Record<string, unknown>)[segment];
  }
  if (parent === null || typeof parent !== 'object') return undefined;
  const last = segments[segments.length - 1];
  if (Array.isArray(parent)) {
    const index = Number(last);
    if (!Number.isInteger(index) || index < 0 || index >= parent.length) return undefined;
    parent[index] = value;
  } else {
    (parent as Record<string, unknown>)[last] = value;
  }
  return { root: document };
}
