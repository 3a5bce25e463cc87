import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CALL_HEADER, withAbortableRequests } from '../../src/storage/abortable-requests.js';

// Plain node:http against a local server that never answers on its own: what the server sees
// is what the helper really did to the connection.

let server: Server;
let port: number;
/** Each request the server received, its call header, and whether the client hung up on it. */
const seen: { path: string; header: unknown; hungUp: boolean }[] = [];
const held: IncomingMessage[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const entry = { path: req.url ?? '', header: req.headers[CALL_HEADER], hungUp: false };
    seen.push(entry);
    held.push(req);
    res.on('close', () => {
      entry.hungUp = !res.writableFinished;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** Starts a GET with `headers` and answers how it ended; it never ends on its own. */
function request(path: string, headers: Readonly<Record<string, string>> = {}): Promise<string> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path, headers }, () => resolve('answered'));
    req.on('error', (error) => resolve(`error: ${error.name}`));
  });
}

const entry = (path: string) => seen.find((s) => s.path === path);

describe('withAbortableRequests', () => {
  it('destroys the requests of the call when the signal aborts, and the server sees it', async () => {
    const controller = new AbortController();
    const ended = withAbortableRequests(controller.signal, async (headers) => {
      await sleep(1);
      return request('/cut', headers);
    });
    await expect.poll(() => entry('/cut')).toBeDefined();
    expect(entry('/cut')?.header).toMatch(/^\d+-\d+$/);
    controller.abort();
    expect(await ended).toBe('error: AbortError');
    await expect.poll(() => entry('/cut')?.hungUp).toBe(true);
  });

  it('destroys a request started after the abort before anything reaches the server', async () => {
    const controller = new AbortController();
    controller.abort();
    const ended = await withAbortableRequests(controller.signal, (headers) => request('/late', headers));
    expect(ended).toBe('error: AbortError');
    await sleep(100);
    expect(entry('/late')).toBeUndefined();
  });

  it("leaves alone the requests that do not carry the call's header, started inside it or not", async () => {
    const controller = new AbortController();
    const outside = request('/outside');
    const inside = withAbortableRequests(controller.signal, () => request('/untagged'));
    await expect.poll(() => entry('/outside') && entry('/untagged')).toBeDefined();
    controller.abort();
    await sleep(100);
    expect(entry('/outside')?.hungUp).toBe(false);
    expect(entry('/untagged')?.hungUp).toBe(false);
    for (const req of held) req.socket.destroy();
    expect(await outside).toMatch(/^error/);
    expect(await inside).toMatch(/^error/);
  });

  it('gives no header and watches nothing without a signal', async () => {
    expect(await withAbortableRequests(undefined, async (headers) => headers)).toEqual({});
  });

  it('stops watching once the call has settled', async () => {
    const controller = new AbortController();
    let tag: Readonly<Record<string, string>> = {};
    await withAbortableRequests(controller.signal, async (headers) => {
      tag = headers;
    });
    const later = request('/after', tag);
    await expect.poll(() => entry('/after')).toBeDefined();
    controller.abort();
    await sleep(100);
    expect(entry('/after')?.hungUp).toBe(false);
    for (const req of held) req.socket.destroy();
    expect(await later).toMatch(/^error/);
  });
});
