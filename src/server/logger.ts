// The server's logger: pino, JSON lines on stderr by default (for log collectors), human-readable
// lines when stderr is a terminal. Stdout stays free for command output.
import { type Logger, pino } from 'pino';
import PinoPretty from 'pino-pretty';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LoggerOptions {
  readonly level?: LogLevel;
  /** pretty: human-readable output; default: when stderr is a TTY. */
  readonly pretty?: boolean;
  readonly name?: string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  const base = { level: options.level ?? 'info', name: options.name ?? 'cairn' };
  if (pretty) return pino(base, PinoPretty({ destination: 2, colorize: true, sync: true }));
  return pino(base, pino.destination({ fd: 2, sync: true }));
}
