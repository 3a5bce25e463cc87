import diagnostics from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';

/**
 * Cancels the HTTP requests of one call when its signal aborts.
 *
 * `@google-cloud/storage` 7 takes no abort signal for uploads: a simple (multipart) upload goes
 * through teeny-request, which hands node-fetch neither a signal nor an agent, and a resumable
 * upload only aborts its requests when its own stream fails. Without this, an upload given up on
 * runs on until its request timeout, and the server may store the object after the caller has
 * reported the write as failed and cleaned up.
 *
 * The requests of a call carry a header naming it (`CALL_HEADER`), which the caller adds to them
 * (for GCS: an interceptor on the call's File object, which the client applies to each of its
 * requests, retries and resumable chunks included). Node publishes every outgoing request on the
 * `http.client.request.start` channel, synchronously, headers set: a request of a call whose
 * signal has aborted is destroyed before it sends anything, one in flight when it aborts is
 * destroyed then, and the server sees the connection close.
 *
 * (An AsyncLocalStorage would tell whose request it is without a header, but on Node 20 the first
 * one used makes every promise of the process markedly slower.)
 */
export const CALL_HEADER = 'x-jobs-call-id';

const calls = new Map<string, AbortSignal>();
let lastId = 0;
let listening = false;

function onRequestStart(message: unknown): void {
  const request = (message as { request: ClientRequest }).request;
  // node-fetch hands its headers to node:http as arrays of values.
  const value = request.getHeader(CALL_HEADER);
  const id = Array.isArray(value) ? value[0] : value;
  const signal = typeof id === 'string' ? calls.get(id) : undefined;
  if (!signal) return;
  const cut = () => request.destroy(abortError(signal));
  if (signal.aborted) {
    cut();
    return;
  }
  signal.addEventListener('abort', cut, { once: true });
  request.once('close', () => signal.removeEventListener('abort', cut));
}

/**
 * Runs `work` with the headers its requests must carry: until it settles, every request carrying
 * them is destroyed when `signal` aborts, or at once when it has already. Without a signal the
 * headers are empty and nothing is watched.
 */
export function withAbortableRequests<T>(
  signal: AbortSignal | undefined,
  work: (headers: Readonly<Record<string, string>>) => Promise<T>,
): Promise<T> {
  if (!signal) return work({});
  if (!listening) {
    diagnostics.subscribe('http.client.request.start', onRequestStart);
    listening = true;
  }
  const id = `${process.pid}-${++lastId}`;
  calls.set(id, signal);
  const forget = () => {
    calls.delete(id);
  };
  let running: Promise<T>;
  try {
    running = work({ [CALL_HEADER]: id });
  } catch (error) {
    forget();
    throw error;
  }
  running.then(forget, forget);
  return running;
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new DOMException('This operation was aborted', 'AbortError');
}
