/**
 * Starting a session under the wrapper (command.ts), and what happens in an image without
 * /bin/sh, for every backend that runs the wrapper: the runtime refuses to start it (a refused
 * upgrade, a Status, or its words on the stream before the PID report), and then a plain command
 * runs directly instead, as its words (plain-command.ts), without the cleanup a second exec gives.
 */
import { BridgeError, isBridgeError } from '../../errors.ts';
import type { ExecProcess } from './exec-process.ts';

export async function startUnderWrapper(start: () => Promise<ExecProcess>, withoutShell: () => Promise<ExecProcess>): Promise<ExecProcess> {
  let proc: ExecProcess;
  try {
    proc = await start();
  } catch (err) {
    if (!isBridgeError(err) || err.code !== 'no-shell') throw err;
    return withoutShell();
  }
  // The wrapper prints its PID report first of all: before that, a failure is a failure to start it.
  const early = await Promise.race([proc.started.then(() => null), proc.exited]);
  const exit = proc.wrapperFailed ? await proc.exited : early;
  if (exit?.kind === 'error' && exit.error.code === 'no-shell') return withoutShell();
  // Something else spoke instead of the wrapper: it never ran, and says why.
  if (proc.wrapperFailed) throw exit?.kind === 'error' ? exit.error : new BridgeError('exec-failed', 'the command could not start');
  return proc;
}
