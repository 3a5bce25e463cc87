import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { useTestApp } from '../support/test-app.js';

const ctx = useTestApp();

describe('background tasks during a database outage', () => {
  it('say once that the database is away instead of logging a stack at every tick', async () => {
    const lines: { level: number; msg: string }[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    });
    const app = await buildApp({
      // Nothing listens on port 1: every tick of the reaper and the sweeper fails at its connect.
      config: loadConfig({
        DATABASE_URL: 'postgres://x:y@127.0.0.1:1/none',
        DATABASE_CONNECT_TIMEOUT_MS: '200',
        REAPER_INTERVAL_SECONDS: '1',
        EXPIRY_SWEEP_INTERVAL_SECONDS: '1',
        LOG_LEVEL: 'info',
      }),
      store: ctx.store,
      logger: createLogger({ level: 'info', destination: sink }),
      listener: false,
    });
    await app.ready();
    try {
      await sleep(3500);
    } finally {
      await app.close();
    }
    expect(lines.filter((line) => line.level >= 50)).toEqual([]);
    expect(lines.filter((line) => line.level === 40).map((line) => line.msg)).toEqual([
      'database unavailable: requests answer 503 until a new connection succeeds',
    ]);
  });
});
