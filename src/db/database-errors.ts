import pg from 'pg';

/** A connection gave no answer within its bound; it was closed, so nothing can run on it again. */
export class DatabaseReadTimeoutError extends Error {
  override name = 'DatabaseReadTimeoutError';
}

/** Socket errors: the database host cannot be reached, or the connection to it broke. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs of a server going away or turning connections down: admin_shutdown (57P01, also
 * pg_terminate_backend), crash_shutdown (57P02), cannot_connect_now (57P03, starting up or
 * shutting down), too_many_connections (53300). Class 08 (connection exceptions) is matched apart.
 */
const SERVER_CODES = new Set(['57P01', '57P02', '57P03', '53300']);

/**
 * pg's own errors carry no code; their messages are all there is. Connection terminated
 * (unexpectedly / due to connection timeout), a pool checkout that timed out, a connect that timed
 * out ("timeout expired"), pg's query_timeout, and a query on a client whose connection broke.
 */
const PG_CONNECTION_MESSAGE =
  /^(Connection terminated|timeout exceeded when trying to connect|timeout expired|Query read timeout|Client (has encountered a connection error|was closed) and is not queryable)/;

const codeOf = (error: unknown) => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
};

/**
 * The database cannot be reached or does not answer: it is down, restarting, paused or out of
 * connections, or the network to it broke. Requests answer 503 while this lasts.
 */
export function isDatabaseUnreachable(error: unknown): boolean {
  if (error instanceof DatabaseReadTimeoutError) return true;
  // Node's connect to several addresses (localhost: ::1 and 127.0.0.1) fails with all of them.
  if (error instanceof AggregateError) return error.errors.some(isDatabaseUnreachable);
  const code = codeOf(error);
  if (code !== undefined) return SOCKET_CODES.has(code) || SERVER_CODES.has(code) || code.startsWith('08');
  return error instanceof Error && PG_CONNECTION_MESSAGE.test(error.message);
}

/** query_canceled: statement_timeout (or a cancel request) stopped the statement; the connection is fine. */
export function isStatementCancelled(error: unknown): boolean {
  return codeOf(error) === '57014';
}

/**
 * Whether a connection may run more statements after this error: only after an answer of the
 * server to one statement (a constraint violation, a statement timeout…). Anything else — a socket
 * error, a timeout of ours, a FATAL (its severity is localized, so the session-ending classes are
 * matched too) — leaves the connection in an unknown state, and it is closed.
 */
export function keepsConnection(error: unknown): boolean {
  if (!(error instanceof pg.DatabaseError)) return false;
  const code = error.code ?? '';
  if (code.startsWith('08') || code.startsWith('57P')) return false;
  return error.severity !== 'FATAL' && error.severity !== 'PANIC';
}

/** One line for a log: the SQLSTATE or error code, then the message; never the stack. */
export function describeDatabaseError(error: unknown): string {
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
