/**
 * Creating and starting one exec: `POST /containers/{id}/exec` then `POST /exec/{id}/start`
 * hijacked (moby api/swagger.yaml, ContainerExec and ExecStart), run by the one ExecProcess over
 * the hijacked socket (exec-transport.ts). ConsoleSize (API 1.42+) gives the terminal its size
 * before the process starts; ExecProcess sends the size at once too (older Engines need it).
 */
import type { Exit, TerminalSize } from '../backend.ts';
import type { Logger } from '../../log.ts';
import { ExecProcess, type ExecProcessTimings } from '../exec/exec-process.ts';
import type { ProcessControl } from '../exec/control/process-control.ts';
import { compareVersions, type EngineClient } from './engine.ts';
import { dockerExecWords, execRefused, type DockerPlace } from './docker-errors.ts';
import { DockerExecTransport } from './exec-transport.ts';

export interface DockerExecTimings extends ExecProcessTimings {
  /** After the stream ended, how long the Engine may keep reporting the exec as Running. */
  exitInspectMs: number;
}

const DEFAULT_EXIT_INSPECT_MS = 10_000;

export interface ExecRequest {
  argv: string[];
  /** null: no terminal (multiplexed stdout and stderr). */
  tty: TerminalSize | null;
  stdin: boolean;
  /** Extra KEY=VALUE pairs for the Engine to set (the wrapper sets the user's own). */
  env?: string[];
  user?: string;
  workingDir?: string;
}

export interface ExecStartOptions {
  control: ProcessControl;
  log: Logger;
  pidReport: boolean;
  timings?: Partial<DockerExecTimings>;
  afterEnd?: (exit: Exit) => Promise<Exit>;
}

export async function startExec(engine: EngineClient, place: DockerPlace, req: ExecRequest, options: ExecStartOptions): Promise<ExecProcess> {
  const version = await engine.apiVersion();
  const sized = req.tty !== null && req.tty.cols > 0 && req.tty.rows > 0 ? req.tty : null;
  const consoleSize = sized !== null && compareVersions(version, '1.42') >= 0 ? [sized.rows, sized.cols] : undefined;
  let execId: string;
  try {
    const created = await engine.json<{ Id: string }>('POST', `/containers/${encodeURIComponent(place.id)}/exec`, {
      AttachStdin: req.stdin,
      AttachStdout: true,
      AttachStderr: true,
      Tty: req.tty !== null,
      Cmd: req.argv,
      ...(req.env !== undefined && req.env.length > 0 ? { Env: req.env } : {}),
      ...(req.user !== undefined ? { User: req.user } : {}),
      ...(req.workingDir !== undefined ? { WorkingDir: req.workingDir } : {}),
      ...(consoleSize !== undefined ? { ConsoleSize: consoleSize } : {}),
    });
    execId = created.body.Id;
    const { socket, head } = await engine.hijack(`/exec/${encodeURIComponent(execId)}/start`, {
      Detach: false,
      Tty: req.tty !== null,
      ...(consoleSize !== undefined ? { ConsoleSize: consoleSize } : {}),
    });
    const { exitInspectMs = DEFAULT_EXIT_INSPECT_MS, ...timings } = options.timings ?? {};
    const transport = new DockerExecTransport({ engine, execId, socket, head, tty: req.tty !== null, log: options.log, exitInspectMs });
    const exec = new ExecProcess({
      transport,
      words: dockerExecWords(place),
      tty: req.tty,
      control: options.control,
      log: options.log,
      timings,
      pidReport: options.pidReport,
      // The Engine writes why it could not start our wrapper (no /bin/sh) on the stream itself.
      runtimeSpeaksFirst: options.pidReport,
      ...(options.afterEnd !== undefined ? { afterEnd: options.afterEnd } : {}),
    });
    return exec;
  } catch (err) {
    throw execRefused(err, place, engine.endpoint);
  }
}
