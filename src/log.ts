import { pino, type Logger as PinoLogger, type Level } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = Level | 'silent';

/** JSON lines on stdout (or stderr for the CLI's own chatter), one logger for the whole process. */
export function createLogger(level: LogLevel = 'info', destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino({ level, base: { app: 'podbridge' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** A logger that discards everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
