// The server's logger: pino, JSON lines on stderr by default (for log collectors), human-readable
// lines when stderr is a terminal. Stdout stays free for command output.
import { createRequire } from 'node:module';
import { type Logger, pino } from 'pino';
import type PinoPrettyModule from 'pino-pretty';
import type { LogLevel } from './log-levels.js';

export { LOG_LEVELS, type LogLevel } from './log-levels.js';

export interface LoggerOptions {
  readonly level?: LogLevel;
  /** pretty: human-readable output; default: when stderr is a TTY. */
  readonly pretty?: boolean;
  readonly name?: string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  const base = { level: options.level ?? 'info', name: options.name ?? 'cairn' };
  if (pretty) {
    // Loaded only for a terminal: a service's start skips its 30 modules.
    const PinoPretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPrettyModule;
    return pino(base, PinoPretty({ destination: 2, colorize: true, sync: true }));
  }
  return pino(base, pino.destination({ fd: 2, sync: true }));
}
