/**
 * Runs a short command in a container as its own exec and collects its output: the second exec
 * that the process control (signals, cleanup) and nothing else uses. Its bytes go to the bridge,
 * never to a user's session.
 */
import type { Readable } from 'node:stream';
import type { Logger } from '../../../log.ts';
import { toBridgeError } from '../../../errors.ts';
import type { KubeApiClient, RequestHeaders } from '../api/client.ts';
import { openExecChannel } from '../channel/connect.ts';
import { ExecProcess } from '../exec/exec-process.ts';
import { streamOnlyProcessControl, type ScriptOutcome, type ScriptRunner } from './process-control.ts';
import type { ExecTarget } from '../api/resolve.ts';

// The control script prints one line; anything near this is not ours.
const MAX_OUTPUT_BYTES = 64 * 1024;

export function execScriptRunner(api: KubeApiClient, headers: RequestHeaders, target: ExecTarget, log: Logger): ScriptRunner {
  return async (argv, timeoutMs) => {
    const clog = log.child({ control: argv[4] ?? argv[0] });
    let proc: ExecProcess;
    try {
      const transport = await openExecChannel(api, headers, { target, argv, tty: false }, clog);
      proc = new ExecProcess({
        transport,
        target,
        tty: null,
        // The control exec is never itself cleaned up or signalled: it ends on its own.
        control: streamOnlyProcessControl({ target, sessionTag: '', log: clog }),
        log: clog,
      });
    } catch (err) {
      return { ran: false, error: toBridgeError(err) };
    }
    // The script reads nothing (over WebSocket v4 this EOF cannot be sent, which it does not need).
    proc.stdin.end();
    const stdout = collect(proc.stdout);
    const stderr = collect(proc.stderr);
    const timer = setTimeout(() => void proc.terminate('the control script took too long'), timeoutMs);
    timer.unref();
    const exit = await proc.exited;
    clearTimeout(timer);
    const outcome: ScriptOutcome = { ran: true, stdout: await stdout, stderr: await stderr, exit };
    // A failure Status (no /bin/sh, container gone) or a lost stream with no report: the script
    // did not run, and the error says why.
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
