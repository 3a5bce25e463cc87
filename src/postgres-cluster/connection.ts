import pg from 'pg';
import { CLUSTER_SUPERUSER } from './control.js';

/** URL of `database` on a local cluster (127.0.0.1, trusted), as its superuser. */
export function clusterUrl(port: number, database: string): string {
  return `postgres://${CLUSTER_SUPERUSER}@127.0.0.1:${port}/${database}`;
}

/** The same server URL pointing at another database. */
export function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/** One connection for `use`, closed afterwards; gives up connecting after 5 seconds. */
export async function withClient<T>(
  connectionString: string,
  use: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}
