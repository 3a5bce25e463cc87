import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Kysely } from 'kysely';
import { JOB_CHANGED_CHANNEL, type NotificationListener } from '../db/notification-listener.js';
import type { Database } from '../db/types.js';
import { jobNotFound } from '../domain/errors.js';
import type { JobStatusView } from '../domain/job-shape.js';
import { TERMINAL_STATUSES } from '../domain/job-statuses.js';
import { readJobStatus } from './job-reader.js';
import { toStatusView } from './job-view.js';
import type { StatusRereader } from './status-rereads.js';

export interface StatusWaitDeps {
  db: Kysely<Database>;
  /** Re-reads after a wake-up, batched with the other waiters woken at the same time. */
  reread: StatusRereader;
  /** Absent: wait_seconds is accepted but the answer comes at once. */
  listener?: NotificationListener;
}

export interface StatusAnswer {
  view: JobStatusView;
  etag: string;
  /** The state matches the client's If-None-Match: answer 304 without a body. */
  notModified: boolean;
}

const terminal: ReadonlySet<string> = new Set(TERMINAL_STATUSES);

/** A strong tag: the serializer turns one view into the same bytes every time. */
export function statusEtag(view: JobStatusView): string {
  return `"${createHash('sha1').update(JSON.stringify(view)).digest('base64url')}"`;
}

/** The opaque tags of an If-None-Match header, compared weakly as RFC 9110 asks for this header. */
function parseIfNoneMatch(header: string | undefined): string[] | undefined {
  if (header === undefined) return undefined;
  return header
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .filter((tag) => tag !== '');
}

const matches = (etag: string, tags: readonly string[]) => tags.includes('*') || tags.includes(etag);

/**
 * The current status of a job, after waiting up to `waitSeconds` for it to leave the state the
 * client already has: the one its If-None-Match names, else the one read at the start.
 *
 * The waiter is registered before the first read, and again before every re-read, so a change
 * committed between a read and the wait still wakes it. While it waits a request holds no
 * connection and runs no query; it reads again only when the job's notification arrives (or the
 * listener reconnected), and answers the last state read when the deadline passes.
 */
export async function readStatusAnswer(
  deps: StatusWaitDeps,
  input: {
    organizationId: string;
    jobId: string;
    waitSeconds: number;
    ifNoneMatch: string | undefined;
    signal: AbortSignal;
  },
): Promise<StatusAnswer> {
  const { listener } = deps;
  const tags = parseIfNoneMatch(input.ifNoneMatch);
  const read = () => readJobStatus(deps, input.organizationId, input.jobId);
  const answer = (view: JobStatusView): StatusAnswer => {
    const etag = statusEtag(view);
    return { view, etag, notModified: tags !== undefined && matches(etag, tags) };
  };
  if (!listener || input.waitSeconds <= 0 || input.signal.aborted) return answer(await read());

  const waitMs = input.waitSeconds * 1000;
  const deadline = performance.now() + waitMs;
  // One scope for every waiter of this request: ending it, whatever the path, leaves none behind.
  const scope = new AbortController();
  const stop = () => scope.abort();
  input.signal.addEventListener('abort', stop, { once: true });
  const changed = (timeoutMs: number) =>
    listener.waitFor(JOB_CHANGED_CHANNEL, input.jobId, { timeoutMs, signal: scope.signal });
  try {
    let woken = changed(waitMs);
    let view = await read();
    const baseline = tags ?? [statusEtag(view)];
    while (!terminal.has(view.status) && matches(statusEtag(view), baseline)) {
      if (!(await woken)) break;
      woken = changed(Math.max(0, deadline - performance.now()));
      const row = await deps.reread(input.organizationId, input.jobId);
      if (!row) throw jobNotFound(input.jobId);
      view = toStatusView(row);
    }
    return answer(view);
  } finally {
    input.signal.removeEventListener('abort', stop);
    scope.abort();
  }
}

/**
 * The long polls in flight. Each one's signal aborts when its client goes away before the answer
 * is written (the response closes first) or when the server starts closing, so a wait neither
 * leaks a waiter nor holds up shutdown.
 */
export function createWaitScopes() {
  const active = new Set<AbortController>();
  let closing = false;
  return {
    open(response: ServerResponse): AbortSignal {
      const controller = new AbortController();
      if (closing) controller.abort();
      active.add(controller);
      response.once('close', () => {
        active.delete(controller);
        controller.abort();
      });
      return controller.signal;
    },
    abortAll() {
      closing = true;
      for (const controller of active) controller.abort();
    },
  };
}
