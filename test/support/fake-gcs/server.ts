/**
 * Starting and stopping the server, recording each request, turning a handler's failure into an
 * answer, and the `FakeGcsServer` handle tests hold (objects, faults, requests, reset, stop).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RecordedRequest, ServerState, UploadSession } from './context.js';
import { type Fault, type FaultRule, FaultRules } from './faults.js';
import { HttpError, sendError } from './http.js';
import { type FakeGcsObject, ObjectStore } from './object-store.js';
import { route } from './routes.js';

export interface FakeGcsServer {
  /** Base URL to pass as `apiEndpoint`, e.g. `http://127.0.0.1:40123`. */
  url: string;
  objects: {
    get(bucket: string, name: string): FakeGcsObject | undefined;
    /** Seeds an object directly, bypassing faults. */
    put(bucket: string, name: string, data: Buffer, contentType?: string): FakeGcsObject;
    delete(bucket: string, name: string): boolean;
    names(bucket: string): string[];
  };
  faults: {
    add(rule: FaultRule): Fault;
    clear(): void;
  };
  /** Every request received, oldest first. */
  requests: RecordedRequest[];
  /** Forgets objects, upload sessions, faults and recorded requests. */
  reset(): void;
  stop(): Promise<void>;
}

/** Listens on a free port of 127.0.0.1. `buckets`: the only buckets that exist; absent: any. */
export async function startFakeGcsServer(options: { buckets?: string[] } = {}): Promise<FakeGcsServer> {
  const requests: RecordedRequest[] = [];
  const stopping = new AbortController();
  // Handlers need the URL, known once listening; no request arrives before that.
  const server = createServer();
  await listen(server);
  const state: ServerState = {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    objects: new ObjectStore(options.buckets),
    sessions: new Map<string, UploadSession>(),
    faults: new FaultRules(stopping.signal),
    stopping: stopping.signal,
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => serve(state, requests, req, res));

  const { objects, faults, sessions } = state;
  return {
    url: state.baseUrl,
    objects: {
      get: (bucket, name) => objects.get(bucket, name),
      put: (bucket, name, data, contentType = 'application/octet-stream') =>
        objects.put(bucket, name, data, contentType),
      delete: (bucket, name) => objects.delete(bucket, name),
      names: (bucket) => objects.list(bucket).map((o) => o.name),
    },
    faults: {
      add: (rule) => faults.add(rule),
      clear: () => faults.clear(),
    },
    requests,
    reset() {
      objects.clear();
      sessions.clear();
      faults.clear();
      requests.length = 0;
    },
    async stop() {
      stopping.abort();
      // Keep-alive sockets of the client would hold `close` open until they time out.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}

function listen(server: Server): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
}

/** Records the request, routes it, and answers whatever the handler threw. */
function serve(state: ServerState, requests: RecordedRequest[], req: IncomingMessage, res: ServerResponse) {
  const record: RecordedRequest = {
    method: req.method ?? 'GET',
    op: 'other',
    headers: req.headers,
    status: 0,
  };
  requests.push(record);
  res.on('finish', () => {
    record.status = res.statusCode;
  });
  route(state, req, res, record).catch((error: unknown) => {
    // Too late for an error answer, or nobody left to read it: just hang up.
    if (res.headersSent || res.destroyed || state.stopping.aborted) {
      res.destroy();
      return;
    }
    if (error instanceof HttpError) sendError(res, error.status, error.message);
    // An injected delay ended by the client hanging up.
    else if ((error as Error).name === 'AbortError') res.destroy();
    else sendError(res, 500, `fake GCS server bug: ${(error as Error).stack ?? String(error)}`);
  });
}
