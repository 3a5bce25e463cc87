import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  DatabaseReadTimeoutError,
  describeDatabaseError,
  isDatabaseUnreachable,
  isStatementCancelled,
  keepsConnection,
} from '../../src/db/database-errors.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

function serverError(code: string, severity: string, message = 'message of the server') {
  const error = new pg.DatabaseError(message, message.length, 'error');
  error.code = code;
  error.severity = severity;
  return error;
}

describe('database errors', () => {
  it.each([
    ['a connection that ended under a query', new Error('Connection terminated unexpectedly')],
    ['a connect that timed out (pool)', new Error('Connection terminated due to connection timeout')],
    ['a connect that timed out (client)', new Error('timeout expired')],
    ['a checkout that timed out', new Error('timeout exceeded when trying to connect')],
    ["pg's query_timeout", new Error('Query read timeout')],
    ['our read timeout', new DatabaseReadTimeoutError('no answer')],
    [
      'a query on a broken client',
      new Error('Client has encountered a connection error and is not queryable'),
    ],
    ['a refused connection', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['a refused connection to every address', new AggregateError([withCode('refused', 'ECONNREFUSED')])],
    ['a reset connection', withCode('read ECONNRESET', 'ECONNRESET')],
    ['admin shutdown', serverError('57P01', 'FATAL')],
    ['crash shutdown', serverError('57P02', 'FATAL')],
    ['the database starting up', serverError('57P03', 'FATAL')],
    ['too many connections', serverError('53300', 'FATAL')],
    ['a connection failure', serverError('08006', 'FATAL')],
  ])('counts %s as the database being unreachable', (_, error) => {
    expect(isDatabaseUnreachable(error)).toBe(true);
  });

  it.each([
    ['a unique violation', serverError('23505', 'ERROR')],
    ['a statement timeout', serverError('57014', 'ERROR')],
    ['a missing table', serverError('42P01', 'ERROR')],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
  ])('does not count %s as the database being unreachable', (_, error) => {
    expect(isDatabaseUnreachable(error)).toBe(false);
  });

  it('tells a statement stopped by statement_timeout', () => {
    expect(isStatementCancelled(serverError('57014', 'ERROR'))).toBe(true);
    expect(isStatementCancelled(serverError('23505', 'ERROR'))).toBe(false);
  });

  it('keeps a connection only after an answer of the server to one statement', () => {
    expect(keepsConnection(serverError('23505', 'ERROR'))).toBe(true);
    expect(keepsConnection(serverError('57014', 'ERROR'))).toBe(true);
    expect(keepsConnection(serverError('57P01', 'FATAL'))).toBe(false);
    // A localized severity: the class still says the session ended.
    expect(keepsConnection(serverError('57P01', 'FATAL (localized)'))).toBe(false);
    expect(keepsConnection(serverError('XX000', 'PANIC'))).toBe(false);
    expect(keepsConnection(new Error('Connection terminated unexpectedly'))).toBe(false);
    expect(keepsConnection(new DatabaseReadTimeoutError('no answer'))).toBe(false);
  });

  it('describes an error in one line, without its stack', () => {
    expect(describeDatabaseError(serverError('57P01', 'FATAL', 'terminating connection'))).toBe(
      '57P01: terminating connection',
    );
    expect(describeDatabaseError(withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'))).toBe(
      'connect ECONNREFUSED 127.0.0.1:1',
    );
  });
});
