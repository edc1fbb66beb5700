/** The Docker Engine's failures in the user's words: one line naming the thing and what to do. */
import { BridgeError } from '../../errors.ts';
import type { ExecWords } from '../exec/exec-process.ts';
import { oneLine } from '../exec/kube-status.ts';
import { EngineError } from './engine.ts';
import type { EngineEndpoint } from './endpoint.ts';

/** A container the session runs in: its name (without Docker's leading '/') and ID. */
export interface DockerPlace {
  id: string;
  name: string;
  /** com.docker.compose.project / service / container-number, when Compose made it. */
  project: string | null;
  service: string | null;
  replica: number | null;
  labels: Readonly<Record<string, string>>;
}

export function where(place: Pick<DockerPlace, 'name'>): string {
  return `Docker container "${place.name}"`;
}

/** A failure to talk to the Engine at all, or an answer we did not expect. */
export function engineFailure(err: unknown, endpoint: EngineEndpoint, doing: string): BridgeError {
  if (err instanceof BridgeError) return err;
  if (!(err instanceof EngineError)) return new BridgeError('internal', 'internal error in podbridge; see the bridge log', { cause: err });
  const at = endpoint.url;
  const detail = { endpoint: at, status: err.status, errno: err.errno, message: err.message, doing };
  if (err.status === null) {
    switch (err.errno) {
      case 'EACCES':
      case 'EPERM':
        return new BridgeError('forbidden', `podbridge may not use the Docker Engine socket ${endpoint.kind === 'unix' ? endpoint.socketPath : at}: permission denied; the bridge's user needs access to it (the docker group, which is root-equivalent: see docs/docker.md)`, { detail, cause: err });
      case 'ENOENT':
        return new BridgeError('api-unreachable', `cannot reach the Docker Engine: ${endpoint.kind === 'unix' ? endpoint.socketPath : at} does not exist; is dockerd running (or is --docker-host wrong)?`, { detail, cause: err });
      case 'ECONNREFUSED':
        return new BridgeError('api-unreachable', `cannot reach the Docker Engine at ${at}: connection refused; is dockerd running?`, { detail, cause: err });
      case 'ETIMEDOUT':
        return new BridgeError('api-unreachable', `cannot reach the Docker Engine at ${at}: ${err.message}`, { detail, cause: err });
      default:
        if (/certificate|SSL|TLS|self.signed|unable to verify|alert/i.test(`${err.errno ?? ''} ${err.message}`)) {
          return new BridgeError('tls', `TLS to the Docker Engine at ${at} failed: ${oneLine(err.message, 200)}; check --docker-tls-ca/--docker-tls-cert/--docker-tls-key (or DOCKER_CERT_PATH)`, { detail, cause: err });
        }
        return new BridgeError('api-unreachable', `lost the Docker Engine at ${at} while ${doing}: ${oneLine(err.message, 200)}`, { detail, cause: err });
    }
  }
  if (err.status === 401 || err.status === 403) {
    // An authorization plugin (or a proxy in front of the socket) refused.
    return new BridgeError('forbidden', `the Docker Engine refused ${doing}: ${oneLine(err.message, 300)}`, { detail, cause: err });
  }
  return new BridgeError('exec-failed', `the Docker Engine failed ${doing}: ${oneLine(err.message, 300)}`, { detail, cause: err });
}

/** The Engine's words when an exec cannot be created or started in a container it found. */
export function execRefused(err: unknown, place: DockerPlace, endpoint: EngineEndpoint): BridgeError {
  if (err instanceof EngineError && err.status !== null) {
    const detail = { ...placeDetail(place), status: err.status, message: err.message };
    if (err.status === 404) return new BridgeError('container-not-found', `${where(place)} no longer exists (it was removed)`, { detail });
    if (err.status === 409 || /is not running|is paused|is restarting/i.test(err.message)) {
      return new BridgeError('container-not-running', `${where(place)} is not running: ${oneLine(err.message, 200)}`, { detail });
    }
  }
  return engineFailure(err, endpoint, `starting a command in ${where(place)}`);
}

/** The exec started but the runtime could not run our program; `words` is what it printed. */
export function startFailure(place: DockerPlace, words: string, code: number | null): BridgeError {
  const detail = { ...placeDetail(place), message: words, exitCode: code };
  if (/executable file not found|no such file or directory/i.test(words)) {
    return new BridgeError('no-shell', `${where(place)} has no /bin/sh; podbridge needs a shell in the image`, { detail });
  }
  return new BridgeError('exec-failed', `command in ${where(place)} could not start: ${oneLine(words, 300)}`, { detail });
}

export function placeDetail(place: DockerPlace): Record<string, unknown> {
  return { container: place.name, containerId: place.id.slice(0, 12) };
}

/** An exec's failures in a container, as ExecProcess reports them. */
export function dockerExecWords(place: DockerPlace): ExecWords {
  return {
    failed: (words, detail) => startFailure(place, words, typeof detail.exitCode === 'number' ? detail.exitCode : null),
    lost: (why, detail) =>
      new BridgeError('stream-lost', `connection to the Docker Engine lost before ${where(place)} reported an exit status${why !== null ? ` (${oneLine(why, 120)})` : ''}`, {
        detail: { ...placeDetail(place), ...detail },
      }),
    endedByBridge: (reason, detail) => new BridgeError('stream-lost', `session in ${where(place)} was ended by podbridge: ${reason}`, { detail: { ...placeDetail(place), ...detail } }),
  };
}
