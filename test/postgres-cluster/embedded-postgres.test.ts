import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPostgresBinDir } from '../../src/postgres-cluster/binaries.js';
import { readPostmasterPid, stopCluster } from '../../src/postgres-cluster/control.js';
import { startEmbeddedPostgres } from '../../src/postgres-cluster/embedded-postgres.js';
import { findFreePort } from '../../src/postgres-cluster/ports.js';

async function query<T extends pg.QueryResultRow>(connectionString: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe('embedded PostgreSQL', () => {
  let dataDir: string;
  let clusterDir: string;
  let port: number;
  const messages: string[] = [];
  const log = (message: string) => messages.push(message);

  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'jobs-embedded-pg-test-'));
    // mkdtemp makes it private; as root, the postgres user must be able to reach the cluster in it.
    await fs.chmod(dataDir, 0o755);
    clusterDir = path.join(dataDir, 'postgres');
    port = await findFreePort();
  });

  afterAll(async () => {
    if (await readPostmasterPid(clusterDir)) {
      const binDir = await findPostgresBinDir(process.env.PG_BINDIR);
      await stopCluster({ binDir, clusterDir, mode: 'immediate' }).catch(() => {});
    }
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('creates a cluster with a jobs database, and stops it', async () => {
    const pgServer = await startEmbeddedPostgres({ dataDir, port, log });
    expect(pgServer.connectionString).toBe(`postgres://postgres@127.0.0.1:${port}/jobs`);
    await query(pgServer.connectionString, 'create table notes (body text)');
    await query(pgServer.connectionString, `insert into notes values ('written by the first start')`);
    const [settings] = await query<{ encoding: string; listen: string }>(
      pgServer.connectionString,
      `select pg_encoding_to_char(encoding) as encoding, current_setting('listen_addresses') as listen
       from pg_database where datname = current_database()`,
    );
    expect(settings).toEqual({ encoding: 'UTF8', listen: '127.0.0.1' });
    await pgServer.stop();
    expect(await readPostmasterPid(clusterDir)).toBeUndefined();
    expect(messages.some((m) => m.startsWith('creating a PostgreSQL cluster'))).toBe(true);
  });

  it('reuses the data of an earlier start', async () => {
    messages.length = 0;
    const pgServer = await startEmbeddedPostgres({ dataDir, port, log });
    try {
      expect(await query(pgServer.connectionString, 'select body from notes')).toEqual([
        { body: 'written by the first start' },
      ]);
      expect(messages.some((m) => m.startsWith('creating'))).toBe(false);
    } finally {
      await pgServer.stop();
    }
  });

  it('reuses a cluster that is already running, and leaves it running', async () => {
    const first = await startEmbeddedPostgres({ dataDir, port });
    messages.length = 0;
    const second = await startEmbeddedPostgres({ dataDir, port, log });
    expect(second.connectionString).toBe(first.connectionString);
    expect(messages.some((m) => m.startsWith('reusing'))).toBe(true);
    await second.stop();
    expect(await query(first.connectionString, 'select count(*)::int as n from notes')).toEqual([{ n: 1 }]);
    await first.stop();
    expect(await readPostmasterPid(clusterDir)).toBeUndefined();
  });

  it('starts after a killed server left its postmaster.pid behind', async () => {
    const first = await startEmbeddedPostgres({ dataDir, port });
    const lock = await readPostmasterPid(clusterDir);
    expect(lock).toBeDefined();
    process.kill(lock?.pid as number, 'SIGKILL');
    const second = await startEmbeddedPostgres({ dataDir, port, log });
    try {
      // `first` started the killed server, not this one: its stop() must leave this one running.
      await first.stop();
      expect(await query(second.connectionString, 'select body from notes')).toEqual([
        { body: 'written by the first start' },
      ]);
    } finally {
      await second.stop();
    }
    expect(await readPostmasterPid(clusterDir)).toBeUndefined();
  });

  it('names EMBEDDED_PG_PORT when another program holds the port', async () => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen({ port, host: '127.0.0.1' }, resolve));
    try {
      await expect(startEmbeddedPostgres({ dataDir, port })).rejects.toThrow(
        /Port \d+ on 127\.0\.0\.1 is in use .*EMBEDDED_PG_PORT/,
      );
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('says what to install or set when no PostgreSQL programs are found', async () => {
    const emptyDir = path.join(dataDir, 'no-binaries');
    await fs.mkdir(emptyDir);
    const attempt = startEmbeddedPostgres({ dataDir, port, binDir: emptyDir });
    await expect(attempt).rejects.toThrow(/PG_BINDIR is set to .*no-binaries/);
    await expect(attempt).rejects.toThrow(/apt-get install postgresql/);
    await expect(attempt).rejects.toThrow(/brew install postgresql@15/);
    await expect(attempt).rejects.toThrow(/set DATABASE_URL/);
  });
});
