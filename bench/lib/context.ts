import type { Kysely } from 'kysely';
import type pg from 'pg';
import type { Database } from '../../src/db/types.js';
import type { HttpLoad, HttpResult } from '../load/protocol.js';
import type { Side } from './alternate.js';
import type { Tenant } from './fixtures.js';
import type { BenchOptions } from './options.js';
import type { BenchDatabase } from './postgres.js';
import type { Driver, RunContext, Target } from './processes.js';

export interface StoredObject {
  jobId: string;
  file: string;
  bytes: number;
}

export interface BenchContext {
  options: BenchOptions;
  run: RunContext;
  database: BenchDatabase;
  db: Kysely<Database>;
  /** Connected to the `postgres` database: statistics reads that do not count in the bench database. */
  admin: pg.Client;
  driver: Driver;
  server: Target;
  reference: Target;
  storeDir: string;
  referenceStoreDir: string;
  tenants: { reads: Tenant; writes: Tenant; drain: Tenant; wait: Tenant };
  /** Jobs whose request holds a data URL offloaded by the server: the file the reference reads too. */
  objects: { oneMiB: StoredObject; tenMiB: StoredObject };
  /** Id prefix of the loaded read jobs. */
  readPrefix: string;
  log: (message: string) => void;
}

/** A side that sends one HTTP load from the driver and reports the target's CPU and memory. */
export function httpSide(
  ctx: BenchContext,
  name: string,
  target: Target,
  load: Omit<HttpLoad, 'kind' | 'baseUrl' | 'durationSeconds'> & { durationSeconds?: number },
  hooks: Pick<Side, 'after'> = {},
): Side & { warmup(): Promise<void> } {
  const send = (durationSeconds: number) =>
    ctx.driver.send<HttpResult>({
      kind: 'http',
      baseUrl: target.baseUrl,
      ...load,
      ...(load.amount ? {} : { durationSeconds }),
    });
  return {
    name,
    pid: () => target.pid,
    async run() {
      const http = await send(load.durationSeconds ?? ctx.options.durationSeconds);
      if (http.ok === 0)
        throw new Error(`${name}: no successful answer (${JSON.stringify(http.statusCodes)})`);
      return { rate: http.rps, latency: http.latency, http };
    },
    async warmup() {
      await send(ctx.options.warmupSeconds);
      await hooks.after?.(0);
    },
    ...hooks,
  };
}
