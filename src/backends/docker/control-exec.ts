/**
 * The second exec the process control runs (signals, cleanup: exec/control/control-script.ts),
 * in the session's container through the Engine. Its bytes go to the bridge, never to a user.
 */
import type { Logger } from '../../log.ts';
import type { ExecProcess } from '../exec/exec-process.ts';
import { toBridgeError } from '../../errors.ts';
import { streamOnlyProcessControl, type ScriptRunner } from '../exec/control/process-control.ts';
import { finishScript } from '../script-run.ts';
import type { EngineClient } from './engine.ts';
import type { DockerPlace } from './docker-errors.ts';
import { startExec } from './exec-start.ts';

export function dockerScriptRunner(engine: EngineClient, place: DockerPlace, log: Logger): ScriptRunner {
  return async (argv, timeoutMs) => {
    const clog = log.child({ control: argv[4] ?? argv[0] });
    let proc: ExecProcess;
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
    return finishScript(proc, timeoutMs);
  };
}
