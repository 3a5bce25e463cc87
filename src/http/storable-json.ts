/**
 * What PostgreSQL cannot store, or the server cannot walk safely, in a client's JSON: a NUL
 * character (text and jsonb refuse U+0000), a lone surrogate (not UTF-8, refused by jsonb), and
 * nesting deeper than a limit (every walk of a document — offloading, hashing, serialising —
 * would otherwise recurse as deep as the client chose).
 */
export interface UnstorableJson {
  /** Path of the offending value, as the error messages name fields: `metadata.k`, `request.a.0`. */
  field: string;
  reason: string;
}

const isStorableText = (text: string) => !text.includes('\u0000') && text.isWellFormed();

function textProblem(text: string, what: string): string | undefined {
  if (text.includes('\u0000')) return `${what} holds a NUL character (\\u0000), which cannot be stored`;
  if (!text.isWellFormed()) return `${what} holds a lone surrogate (invalid Unicode), which cannot be stored`;
  return undefined;
}

/**
 * The first value of `value` that cannot be stored, or undefined. Walks without recursion, so a
 * document nested far deeper than `maxDepth` is refused without exhausting the stack.
 */
export function findUnstorableJson(value: unknown, maxDepth: number, root = ''): UnstorableJson | undefined {
  const stack: { value: unknown; path: string[] }[] = [{ value, path: root ? [root] : [] }];
  while (stack.length > 0) {
    const { value: current, path } = stack.pop() as { value: unknown; path: string[] };
    if (typeof current === 'string') {
      const problem = textProblem(current, 'the value');
      if (problem) return { field: path.join('.'), reason: problem };
      continue;
    }
    if (current === null || typeof current !== 'object') continue;
    if (path.length - (root ? 1 : 0) >= maxDepth) {
      return {
        field: path.slice(0, root ? 2 : 1).join('.'),
        reason: `nests arrays and objects deeper than ${maxDepth} levels`,
      };
    }
    for (const [key, child] of Object.entries(current)) {
      if (!isStorableText(key)) {
        return { field: path.join('.'), reason: textProblem(key, 'a key') as string };
      }
      stack.push({ value: child, path: [...path, key] });
    }
  }
  return undefined;
}
