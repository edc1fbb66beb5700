/**
 * Runs a short command in a container as its own exec and collects its output: the second exec
 * that the process control (signals, cleanup) and nothing else uses. Its bytes go to the bridge,
 * never to a user's session.
 */
import type { Logger } from '../../log.ts';
import { toBridgeError } from '../../errors.ts';
import type { KubeApiClient, RequestHeaders } from './api/client.ts';
import { openExecChannel } from './channel/connect.ts';
import { ExecProcess } from '../exec/exec-process.ts';
import { kubernetesExecWords } from './exec-errors.ts';
import { streamOnlyProcessControl, type ScriptRunner } from '../exec/control/process-control.ts';
import { finishScript } from '../script-run.ts';
import type { ExecTarget } from './api/target-resolution.ts';

export function execScriptRunner(api: KubeApiClient, headers: RequestHeaders, target: ExecTarget, log: Logger): ScriptRunner {
  return async (argv, timeoutMs) => {
    const clog = log.child({ control: argv[4] ?? argv[0] });
    let proc: ExecProcess;
    try {
      const transport = await openExecChannel(api, headers, { target, argv, tty: false }, clog);
      proc = new ExecProcess({
        transport,
        words: kubernetesExecWords(target),
        tty: null,
        // The control exec is never itself cleaned up or signalled: it ends on its own.
        control: streamOnlyProcessControl({ target, sessionTag: '', log: clog }),
        log: clog,
      });
    } catch (err) {
      return { ran: false, error: toBridgeError(err) };
    }
    return finishScript(proc, timeoutMs);
  };
}
