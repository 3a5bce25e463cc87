/** pino-compatible: `logger.info({ job_id }, 'job completed')`. */
export interface WorkerLogger {
  debug?(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

const LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LEVELS)[number];

function format(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .map(([key, value]) => {
      const text =
        value instanceof Error ? value.message : typeof value === 'string' ? value : JSON.stringify(value);
      return `${key}=${/\s/.test(text ?? '') ? JSON.stringify(text) : text}`;
    })
    .join(' ');
}

/** One line per entry on stderr: `2024-01-16T12:00:00.000Z info job completed job_id=… duration_ms=12`. */
export function createConsoleLogger(options: { level?: LogLevel } = {}): WorkerLogger {
  const threshold = LEVELS.indexOf(options.level ?? 'info');
  const line = (level: LogLevel) => (fields: Record<string, unknown>, message: string) => {
    if (LEVELS.indexOf(level) < threshold) return;
    const rest = format(fields);
    console.error(`${new Date().toISOString()} ${level} ${message}${rest ? ` ${rest}` : ''}`);
  };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}
