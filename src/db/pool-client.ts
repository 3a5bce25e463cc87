import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { DatabaseReadTimeoutError, keepsConnection } from './database-errors.js';

export interface PoolClientOptions {
  /** Named prepared statements (see BENCHMARKS.md); off behind poolers that cannot keep them. */
  prepareStatements: boolean;
  /**
   * How long a query may go unanswered before its connection is closed and the query fails with
   * DatabaseReadTimeoutError. Undefined: no limit.
   */
  readTimeoutMs?: number;
  /** Every error that ends a connection (and every 'error' event): what the health tracker hears. */
  onConnectionError?: (error: unknown, startedAt: number) => void;
}

// Distinct statements that get a name; past this, statements run unnamed (queries built with a
// variable number of parameters must not grow every connection's statement cache for ever).
const MAX_NAMED_STATEMENTS = 500;
const statementNames = new Map<string, string>();

const readTimeoutOverride = new AsyncLocalStorage<number>();

/**
 * Runs `work` with another read timeout for the queries it sends (readiness answers within a
 * second, whatever the statement timeout).
 */
export function withReadTimeout<T>(timeoutMs: number, work: () => Promise<T>): Promise<T> {
  return readTimeoutOverride.run(timeoutMs, work);
}

type Done = (error: Error | null | undefined, result?: unknown) => void;
// biome-ignore lint/suspicious/noExplicitAny: pg's query() has many overloads; this class forwards them all.
type Loose = any;

/**
 * The client class of the pool. Three things on top of pg.Client:
 * - every parameterised query runs as a named prepared statement, one name per distinct SQL
 *   text: each connection parses and plans it once, then only binds and executes. On the status
 *   route this is worth more than anything else the server does per request (see BENCHMARKS.md);
 * - it always has an 'error' listener: pg-pool listens only while a client is idle, and an error
 *   event on a checked-out client (the database stopped mid-request) would end the process;
 * - a query that gets no answer within the read timeout, or an error that leaves the connection
 *   unusable, ends the client: pg-pool drops a client whose `end()` was called when it comes
 *   back (`_ending`), so a broken connection never returns to the idle list. pg's own
 *   query_timeout would fail the query but leave the connection in the pool, with the unanswered
 *   query still ahead of the next one.
 */
export function createPoolClientClass(options: PoolClientOptions): typeof pg.Client {
  const { prepareStatements, readTimeoutMs, onConnectionError } = options;

  return class PoolClient extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      this.on('error', (error) => onConnectionError?.(error, performance.now()));
    }

    override query(config: Loose, values?: Loose, callback?: Loose): Loose {
      // Cursors and streams (submittables) carry their own callbacks; this server sends none.
      if (typeof config?.submit === 'function') return super.query(config, values, callback);
      let args = values;
      let done = callback;
      if (typeof args === 'function') {
        done = args;
        args = undefined;
      }
      const query = prepareStatements ? named(config, args) : config;
      if (query !== config) args = undefined;
      if (typeof done === 'function') {
        this.#send(query, args, done);
        return undefined;
      }
      return new Promise((resolve, reject) =>
        this.#send(query, args, (error, result) => (error ? reject(error) : resolve(result))),
      );
    }

    #send(query: Loose, values: Loose, done: Done) {
      const startedAt = performance.now();
      const timeoutMs = readTimeoutOverride.getStore() ?? readTimeoutMs;
      let settled = false;
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              settled = true;
              const error = new DatabaseReadTimeoutError(
                `the database did not answer within ${timeoutMs} ms; its connection was closed`,
              );
              this.#abandon(error, startedAt);
              done(error);
            }, timeoutMs);
      try {
        super.query(query, values, (error: Error | null, result: unknown) => {
          clearTimeout(timer);
          if (settled) return; // timed out: the answer (or the error of the closed socket) is late
          settled = true;
          if (error && !keepsConnection(error)) this.#abandon(error, startedAt);
          done(error, result);
        });
      } catch (error) {
        clearTimeout(timer);
        settled = true;
        done(error as Error);
      }
    }

    /** Closes the connection (at once when a query is in flight) and reports why. */
    #abandon(error: unknown, startedAt: number) {
      onConnectionError?.(error, startedAt);
      this.end().catch(() => {});
    }
  };
}

/** The named form of a parameterised query, or the query as it is. */
function named(config: unknown, values: unknown): unknown {
  if (typeof config !== 'string' || !Array.isArray(values) || values.length === 0) return config;
  let name = statementNames.get(config);
  if (!name && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `s${statementNames.size}`;
    statementNames.set(config, name);
  }
  return name ? { name, text: config, values } : config;
}
