import { pino, type Logger as PinoLogger, type Level } from 'pino';
import pretty from 'pino-pretty';

export type Logger = PinoLogger;
export type LogLevel = Level | 'silent';

/**
 * One logger for the whole process: JSON lines (for a file, a pipe, a log shipper), or, when
 * stdout is a terminal, readable lines (`12:00:01.123 INFO: listening address: "0.0.0.0:2222"`)
 * for the person watching it. Same fields either way.
 */
export function createLogger(level: LogLevel = 'info', destination: NodeJS.WritableStream = process.stdout): Logger {
  const options = { level, base: { app: 'podbridge' }, timestamp: pino.stdTimeFunctions.isoTime };
  if (destination === process.stdout && process.stdout.isTTY) {
    // Synchronous, in this thread: no worker to lose lines when the process exits at once.
    return pino(options, pretty({ colorize: true, singleLine: true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,app', destination: 1 }));
  }
  return pino(options, destination);
}

/** A logger that discards everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
