/**
 * Fault injection: rules a test adds to make matching requests fail, wait, or carry wrong bytes.
 * Route handlers ask `FaultRules.apply` before doing their work and act on the outcome.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpError } from './http.js';

/**
 * `put` is the upload request itself (multipart, or the start of a resumable upload);
 * `put-chunk` is each `PUT` to a resumable session; `stat` reads metadata; `get` reads bytes.
 */
export type FakeGcsOperation = 'put' | 'put-chunk' | 'get' | 'stat' | 'delete' | 'list';

export type FaultAction =
  /** Answer with this status and a GCS-shaped error body. */
  | { type: 'status'; status: number; message?: string }
  /**
   * Wait before handling the request normally (other matching rules still apply). The wait ends
   * early when the client hangs up, unless `outlivesClient`: then it runs on (until the server
   * stops) and the request is handled all the same, as GCS stores an upload it had whole after
   * the client gave up on it; the answer goes nowhere.
   */
  | { type: 'delay'; ms: number; outlivesClient?: boolean }
  /**
   * `get`: serve the bytes with some flipped. By default without `x-goog-hash` and
   * `x-goog-stored-content-encoding`: without those the client skips its own CRC32C check (with
   * the encoding header but no hash it would fail the download itself), so the bad bytes reach
   * the caller and the caller's sha256 comparison is what catches them. `keepHash: true` sends the
   * original object's hashes instead, so the client's own validation rejects the download.
   * `put`/`put-chunk`: store flipped bytes and report their checksums, as a server that mangled
   * the upload would; the client then deletes the object and fails the upload.
   */
  | { type: 'corrupt'; keepHash?: boolean }
  /**
   * `get`: serve only the first `bytes` bytes. By default as a complete, shorter answer without
   * hashes (the caller's size/sha256 check catches it); with `cutConnection` the headers promise
   * the whole object and the socket is destroyed after `bytes` bytes (the client sees an error).
   * `put`/`put-chunk`: store only the first `bytes` bytes of the object.
   */
  | { type: 'truncate'; bytes: number; cutConnection?: boolean };

export type FaultRule = FaultAction & {
  /** Operations the rule applies to; absent: all. */
  op?: FakeGcsOperation | FakeGcsOperation[];
  bucket?: string;
  /** Exact object name (with the store's prefix, as GCS sees it). */
  name?: string;
  prefix?: string;
  test?: (name: string, op: FakeGcsOperation) => boolean;
  /** Let this many matching requests through before the rule starts firing. */
  skip?: number;
  /** Fire this many times, then stop; absent: for ever. */
  times?: number;
};

export interface Fault {
  /** How many requests the rule fired on. */
  readonly hits: number;
  remove(): void;
}

/** A fault that changes the answer; a delay only postpones it and is over once `apply` returns. */
export type Outcome = Exclude<FaultAction, { type: 'delay' }>;

interface ActiveRule {
  rule: FaultRule;
  seen: number;
  hits: number;
  removed: boolean;
}

export class FaultRules {
  #rules: ActiveRule[] = [];
  /** Aborted when the server stops: what ends a delay that outlives its client. */
  readonly #stopping: AbortSignal | undefined;

  constructor(stopping?: AbortSignal) {
    this.#stopping = stopping;
  }

  add(rule: FaultRule): Fault {
    const active: ActiveRule = { rule, seen: 0, hits: 0, removed: false };
    this.#rules.push(active);
    return {
      get hits() {
        return active.hits;
      },
      remove: () => {
        active.removed = true;
        this.#rules = this.#rules.filter((r) => r !== active);
      },
    };
  }

  clear(): void {
    for (const active of this.#rules) active.removed = true;
    this.#rules = [];
  }

  /**
   * Runs the delays of every matching rule and answers the first other fault that matches.
   * `signal` ends a delay early (client gone, server stopping) by rejecting with an AbortError.
   */
  async apply(
    op: FakeGcsOperation,
    bucket: string,
    name: string,
    signal: AbortSignal,
  ): Promise<Outcome | undefined> {
    let outcome: Outcome | undefined;
    // A copy: a rule removed while a delay runs must not shift the iteration.
    for (const active of [...this.#rules]) {
      const { rule } = active;
      if (active.removed || !matches(rule, op, bucket, name)) continue;
      if (rule.type !== 'delay' && outcome) continue;
      active.seen++;
      if (active.seen <= (rule.skip ?? 0)) continue;
      if (rule.times !== undefined && active.hits >= rule.times) continue;
      active.hits++;
      if (rule.type === 'delay') {
        const until = rule.outlivesClient ? (this.#stopping ?? signal) : signal;
        await sleep(rule.ms, undefined, { signal: until });
      } else outcome = rule;
    }
    return outcome;
  }
}

function matches(rule: FaultRule, op: FakeGcsOperation, bucket: string, name: string): boolean {
  const ops = rule.op === undefined ? undefined : Array.isArray(rule.op) ? rule.op : [rule.op];
  return (
    (ops === undefined || ops.includes(op)) &&
    (rule.bucket === undefined || rule.bucket === bucket) &&
    (rule.name === undefined || rule.name === name) &&
    (rule.prefix === undefined || name.startsWith(rule.prefix)) &&
    (rule.test === undefined || rule.test(name, op))
  );
}

export function throwIfStatus(outcome: Outcome | undefined): void {
  if (outcome?.type === 'status') throw new HttpError(outcome.status, outcome.message ?? 'injected fault');
}

/** The bytes an upload stores under a `corrupt` or `truncate` fault. */
export function mangleUpload(data: Buffer, outcome: Outcome | undefined): Buffer {
  if (outcome?.type === 'corrupt') return flipBytes(data);
  if (outcome?.type === 'truncate') return data.subarray(0, outcome.bytes);
  return data;
}

/** A copy with the first, middle and last bytes inverted: same length, different content. */
export function flipBytes(data: Buffer): Buffer {
  const copy = Buffer.from(data);
  for (const i of new Set([0, copy.length >> 1, copy.length - 1])) {
    if (i >= 0 && i < copy.length) copy[i] ^= 0xff;
  }
  return copy;
}
