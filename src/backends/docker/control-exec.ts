/**
 * The second exec the process control runs (signals, cleanup: kubernetes/control-script.ts),
 * in the session's container through the Engine. Its bytes go to the bridge, never to a user.
 */
import type { Readable } from 'node:stream';
import type { Logger } from '../../log.ts';
import { toBridgeError } from '../../errors.ts';
import { streamOnlyProcessControl, type ScriptOutcome, type ScriptRunner } from '../kubernetes/process-control.ts';
import type { EngineClient } from './engine.ts';
import type { DockerPlace } from './errors.ts';
import { startExec } from './exec-start.ts';
import type { DockerExec } from './exec-stream.ts';

// The control script prints one line; anything near this is not ours.
const MAX_OUTPUT_BYTES = 64 * 1024;

export function dockerScriptRunner(engine: EngineClient, place: DockerPlace, log: Logger): ScriptRunner {
  return async (argv, timeoutMs) => {
    const clog = log.child({ control: argv[4] ?? argv[0] });
    let proc: DockerExec;
    try {
      proc = await startExec(engine, place, { argv, tty: null, stdin: false }, {
        // The control exec is never itself cleaned up or signalled: it ends on its own.
        control: streamOnlyProcessControl({ target: place, sessionTag: '', log: clog }),
        log: clog,
        pidReport: false,
      });
    } catch (err) {
      return { ran: false, error: toBridgeError(err) };
    }
    proc.stdin.end();
    const stdout = collect(proc.stdout);
    const stderr = collect(proc.stderr);
    const timer = setTimeout(() => void proc.terminate('the control script took too long'), timeoutMs);
    timer.unref();
    const exit = await proc.exited;
    clearTimeout(timer);
    const outcome: ScriptOutcome = { ran: true, stdout: await stdout, stderr: await stderr, exit };
    if (exit.kind === 'error' && !outcome.stdout.includes('podbridge-control ')) return { ran: false, error: exit.error };
    return outcome;
  };
}

function collect(stream: Readable | null): Promise<string> {
  if (stream === null) return Promise.resolve('');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      if (size >= MAX_OUTPUT_BYTES) return;
      size += chunk.length;
      chunks.push(chunk);
    });
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('error', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}
