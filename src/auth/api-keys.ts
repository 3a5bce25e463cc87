import { createHash, randomBytes } from 'node:crypto';

/**
 * API keys are 192 random bits, so a plain SHA-256 is enough to store them: there is no
 * dictionary to attack, and the lookup stays one indexed equality.
 */
export function generateApiKey(): { key: string; hash: string; displayPrefix: string } {
  const key = `sk_${randomBytes(24).toString('base64url')}`;
  return { key, hash: hashApiKey(key), displayPrefix: key.slice(0, 11) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
