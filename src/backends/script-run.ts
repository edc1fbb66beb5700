/**
 * The protocol-neutral half of running the control script (exec/control/control-script.ts) as a
 * second exec: given the started exec, send EOF, collect its output in bounded memory, bound its
 * time, and say whether the script ran. Each backend only starts the exec its own way.
 */
import type { Readable } from 'node:stream';
import type { RemoteProcess } from './backend.ts';
import type { ScriptOutcome } from './exec/control/process-control.ts';

// The control script prints one line; anything near this is not ours.
const MAX_OUTPUT_BYTES = 64 * 1024;

export async function finishScript(proc: RemoteProcess, timeoutMs: number): Promise<ScriptOutcome> {
  // The script reads nothing (over Kubernetes v4 this EOF cannot be sent, which it does not need).
  proc.stdin.end();
  const stdout = collect(proc.stdout);
  const stderr = collect(proc.stderr);
  const timer = setTimeout(() => void proc.terminate('the control script took too long'), timeoutMs);
  timer.unref();
  const exit = await proc.exited;
  clearTimeout(timer);
  const outcome: ScriptOutcome = { ran: true, stdout: await stdout, stderr: await stderr, exit };
  // A failure (no /bin/sh, container gone) or a lost stream with no report: the script did not
  // run, and the error says why.
  if (exit.kind === 'error' && !outcome.stdout.includes('podbridge-control ')) return { ran: false, error: exit.error };
  return outcome;
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
