/**
 * The references the server is compared with: bare Fastify and a pg pool of the same size doing
 * the same work with nothing around it (no auth, no schemas, no request ids, no error shape).
 * What the server does beyond this is its overhead.
 *
 *   GET  /jobs/:id/status   the same primary-key SELECT as the status route (same columns, same WHERE)
 *   GET  /jobs/:id          the same SELECT as the lightweight retrieve
 *   GET  /objects/:name     one object read straight from the file store, answered as the job's
 *                           request JSON (data: URL), as include_request=true answers it
 *   POST /jobs              one INSERT of the job row; a large data: URL is first written to the
 *                           file store the way the server's store writes (temp file, fsync, rename)
 *
 * Environment: DATABASE_URL, PORT, POOL_SIZE, READ_ORG_ID, WRITE_ORG_ID, STORE_DIR, OBJECTS (JSON:
 * name -> {file, contentType, filename}).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import Fastify from 'fastify';
import pg from 'pg';
import { DETAIL_COLUMNS, LIFECYCLE_COLUMNS } from '../../src/db/job-columns.js';

const env = process.env;
const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: Number(env.POOL_SIZE ?? 10) });
pool.on('error', () => {});
const readOrg = env.READ_ORG_ID as string;
const writeOrg = env.WRITE_ORG_ID as string;
const storeDir = env.STORE_DIR as string;
const objects = JSON.parse(env.OBJECTS ?? '{}') as Record<
  string,
  { file: string; contentType: string; filename: string }
>;

const statusSql = `select ${LIFECYCLE_COLUMNS.map((c) => `"${c}"`).join(', ')} from "jobs" where "id" = $1 and "organization_id" = $2`;
const detailSql = `select ${DETAIL_COLUMNS.map((c) => `"${c}"`).join(', ')} from "jobs" where "id" = $1 and "organization_id" = $2`;

const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });

app.get<{ Params: { id: string } }>('/jobs/:id/status', async (request, reply) => {
  const { rows } = await pool.query(statusSql, [request.params.id, readOrg]);
  if (rows.length === 0) return reply.code(404).send({ error: 'not found' });
  return rows[0];
});

app.get<{ Params: { id: string } }>('/jobs/:id', async (request, reply) => {
  const { rows } = await pool.query(detailSql, [request.params.id, readOrg]);
  if (rows.length === 0) return reply.code(404).send({ error: 'not found' });
  return rows[0];
});

app.get<{ Params: { name: string } }>('/objects/:name', async (request, reply) => {
  const object = objects[request.params.name];
  if (!object) return reply.code(404).send({ error: 'not found' });
  const bytes = await readFile(object.file);
  const url = `data:${object.contentType};base64,${bytes.toString('base64')}`;
  return { object: 'job', request: { document: { filename: object.filename, url } } };
});

const DATA_URL = /^data:([^,]*?);base64,/;
const OFFLOAD_THRESHOLD = 16384;

/** What the file store does for durability: write beside, fsync, rename. */
async function storeFile(key: string, bytes: Buffer): Promise<string> {
  const target = path.join(storeDir, key);
  await mkdir(path.dirname(target), { recursive: true });
  const temporary = path.join(path.dirname(target), `.tmp-${randomUUID()}`);
  const handle = await open(temporary, 'wx');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, target);
  return `file://${target}`;
}

app.post<{ Body: { endpoint: string; request: { document?: { url?: string } } } }>(
  '/jobs',
  async (request, reply) => {
    const id = `job_${randomBytes(16).toString('base64url').slice(0, 21)}`;
    const body = request.body;
    const document = body.request.document;
    const match = typeof document?.url === 'string' ? DATA_URL.exec(document.url) : null;
    if (document && match && (document.url as string).length > OFFLOAD_THRESHOLD) {
      const bytes = Buffer.from((document.url as string).slice(match[0].length), 'base64');
      document.url = await storeFile(`${id}/request/0.bin`, bytes);
    }
    const now = new Date();
    const { rows } = await pool.query(
      `insert into jobs (id, organization_id, status, endpoint, request, max_attempts, created_at, updated_at,
         run_after, expires_at)
       values ($1, $2, 'queued', $3, $4, 3, $5, $5, $5, $6)
       returning ${LIFECYCLE_COLUMNS.map((c) => `"${c}"`).join(', ')}`,
      [id, writeOrg, body.endpoint, JSON.stringify(body.request), now, new Date(now.getTime() + 604800_000)],
    );
    return reply.code(201).send(rows[0]);
  },
);

process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => {
  void app.close().then(() => pool.end().then(() => process.exit(0)));
});
await app.listen({ port: Number(env.PORT), host: '127.0.0.1' });
process.send?.({ listening: true });
