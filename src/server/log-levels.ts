// The log levels the server's settings accept, apart from the logger itself: the command line
// validates a level without loading pino (a CLI command that serves nothing starts faster).
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
