/**
 * What every route handler works with: the server's state, shared by all requests, and the one
 * request it answers. One shape for all handlers, so routing is a plain dispatch.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { FakeGcsOperation, FaultRules } from './faults.js';
import type { FakeGcsObject, ObjectStore } from './object-store.js';

export interface RecordedRequest {
  method: string;
  op: FakeGcsOperation | 'other';
  bucket?: string;
  name?: string;
  headers: IncomingHttpHeaders;
  /** Filled in when the answer is sent; 0 while pending or when the connection was cut. */
  status: number;
}

export interface ServerState {
  /** E.g. `http://127.0.0.1:40123`: links in object resources and resumable session URLs use it. */
  readonly baseUrl: string;
  readonly objects: ObjectStore;
  /** Open (and finished) resumable uploads, by upload id. */
  readonly sessions: Map<string, UploadSession>;
  readonly faults: FaultRules;
  /** Aborted when the server stops, so that injected delays end with it. */
  readonly stopping: AbortSignal;
}

export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** The whole request body, read before routing. */
  readonly body: Buffer;
  /** Aborts when the client hangs up or the server stops; ends injected delays early. */
  readonly gone: AbortSignal;
  /** This request's entry in `FakeGcsServer.requests`; handlers fill in op, bucket and name. */
  readonly record: RecordedRequest;
}

export interface UploadSession {
  bucket: string;
  name: string;
  contentType: string;
  chunks: Buffer[];
  received: number;
  /** The object's size, once the client has said it (up front, or in a Content-Range). */
  total?: number;
  /** The stored object: a resent last chunk gets the same answer again. */
  done?: FakeGcsObject;
}
