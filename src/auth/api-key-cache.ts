import type { ActiveApiKey } from './api-key-repository.js';

/**
 * Verified keys, kept for a short time so that a polling client costs one query per request
 * (the job's) instead of two. A revoked key keeps working until its entry expires: at most
 * `ttlMs`. Unknown keys are never cached, so a key created a moment ago works at once.
 */
export class ApiKeyCache {
  private readonly entries = new Map<string, { key: ActiveApiKey; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  get(keyHash: string): ActiveApiKey | undefined {
    const entry = this.entries.get(keyHash);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(keyHash);
      return undefined;
    }
    return entry.key;
  }

  set(keyHash: string, key: ActiveApiKey): void {
    if (this.ttlMs <= 0) return;
    if (this.entries.size >= this.maxEntries) {
      // Maps iterate in insertion order: dropping the first entry drops the oldest.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(keyHash, { key, expiresAt: this.now() + this.ttlMs });
  }
}
