import pino, { type Logger } from 'pino';

function decodedName(raw: string): string {
  try {
    return decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    return raw;
  }
}

/** A query parameter that is, or could be read as, a credential: `access_token` however spelled. */
const isCredentialName = (raw: string) => {
  const letters = decodedName(raw)
    .toLowerCase()
    .replace(/[^a-z]/g, '');
  return letters.includes('accesstoken') || letters.includes('apikey');
};

/**
 * Strips credentials from a URL before it is logged. Parameter names are judged decoded, as the
 * query parser reads them: `access%5Ftoken`, `access_token%00` and `access_token[]` are
 * redacted like `access_token`.
 */
export function redactUrl(url: string): string {
  const start = url.indexOf('?');
  if (start < 0) return url;
  const end = url.indexOf('#', start);
  const query = url.slice(start + 1, end < 0 ? undefined : end);
  const redacted = query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      return isCredentialName(name) ? `${name}=[REDACTED]` : pair;
    })
    .join('&');
  return `${url.slice(0, start + 1)}${redacted}${end < 0 ? '' : url.slice(end)}`;
}

export function createLogger(options: { level: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      redact: {
        paths: [
          'req.headers["api-key"]',
          'req.headers.authorization',
          'req.query.access_token',
          'headers["api-key"]',
          'headers.authorization',
        ],
        censor: '[REDACTED]',
      },
      serializers: {
        req: (req) => ({
          method: req.method,
          url: redactUrl(req.url),
          host: req.host,
          remoteAddress: req.ip,
        }),
      },
    },
    options.destination,
  );
}
