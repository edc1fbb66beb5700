/**
 * A Docker login (target.ts: container name or ID prefix, or PROJECT.SERVICE[+N]) to one running
 * container. Names and ID prefixes are resolved by the Engine itself (`GET /containers/{ref}/json`:
 * full ID, exact name, then unique ID prefix), exactly as `docker exec REF` does. Compose services
 * are found by the labels Compose puts on its containers (com.docker.compose.project, .service,
 * .container-number); without +N the lowest-numbered running replica is used, as
 * `docker compose exec` uses replica 1.
 */
import { BridgeError } from '../../errors.ts';
import type { ListedPlace } from '../backend.ts';
import { describeDockerRef, type DockerRef } from '../../target.ts';
import { EngineError, type EngineClient } from './engine.ts';
import { engineFailure, where, type DockerPlace } from './docker-errors.ts';

export const COMPOSE_PROJECT = 'com.docker.compose.project';
export const COMPOSE_SERVICE = 'com.docker.compose.service';
export const COMPOSE_NUMBER = 'com.docker.compose.container-number';

export interface ContainerInspect {
  Id: string;
  Name: string;
  State?: {
    Status?: string;
    Running?: boolean;
    Paused?: boolean;
    Restarting?: boolean;
    ExitCode?: number;
    StartedAt?: string;
    FinishedAt?: string;
    Error?: string;
  };
  Config?: { Labels?: Record<string, string> | null };
}

interface ContainerSummary {
  Id: string;
  Names?: string[];
  State?: string;
  Labels?: Record<string, string> | null;
}

export interface Resolved {
  place: DockerPlace;
  /** The container as inspected at resolution: what a later end is compared with. */
  inspect: ContainerInspect;
}

export async function resolveDocker(engine: EngineClient, ref: DockerRef): Promise<Resolved> {
  if (ref.kind === 'container') return checkRunning(await inspectByRef(engine, ref.name, ref));
  const compose = await findComposeContainer(engine, ref);
  if (compose !== null) return checkRunning(compose);
  // A plain container whose name happens to have a dot (`my.app`) is reached by that name.
  const plain = `${ref.project}.${ref.service}`;
  if (ref.replica === null) {
    const byName = await inspectOrNull(engine, plain);
    if (byName !== null && placeOf(byName).name === plain) return checkRunning(byName);
  }
  throw new BridgeError('container-not-found', `no container of Compose service "${ref.service}" in project "${ref.project}"; list them with: docker compose -p ${ref.project} ps`, {
    detail: { project: ref.project, service: ref.service },
  });
}

/** The container as it is now; null when it no longer exists. Engine failures are thrown. */
export async function inspectNow(engine: EngineClient, id: string): Promise<ContainerInspect | null> {
  return inspectOrNull(engine, id);
}

export function placeOf(c: ContainerInspect): DockerPlace {
  const labels = c.Config?.Labels ?? {};
  const number = Number(labels[COMPOSE_NUMBER]);
  return {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    project: labels[COMPOSE_PROJECT] ?? null,
    service: labels[COMPOSE_SERVICE] ?? null,
    replica: Number.isInteger(number) && number > 0 ? number : null,
    labels,
  };
}

/** Why a container is not running, in the words `docker ps -a` would use. */
export function notRunning(c: ContainerInspect): BridgeError | null {
  const s = c.State ?? {};
  const place = placeOf(c);
  const detail = { container: place.name, containerId: c.Id.slice(0, 12), state: s.Status };
  if (s.Paused === true) return new BridgeError('container-not-running', `${where(place)} is paused; unpause it (docker unpause ${place.name}) to log in`, { detail });
  if (s.Restarting === true) return new BridgeError('container-not-running', `${where(place)} is restarting (last exit code ${s.ExitCode ?? '?'}); try again once it runs`, { detail });
  if (s.Running === true) return null;
  const status = s.Status ?? 'stopped';
  const exit = status === 'exited' ? ` with code ${s.ExitCode ?? '?'}${s.FinishedAt !== undefined && !s.FinishedAt.startsWith('0001-') ? ` at ${s.FinishedAt.replace(/\.\d+Z$/, 'Z')}` : ''}` : '';
  const error = s.Error !== undefined && s.Error !== '' ? ` (${s.Error})` : '';
  return new BridgeError('container-not-running', `${where(place)} is not running (${status}${exit}${error}); start it with: docker start ${place.name}`, { detail });
}

function checkRunning(c: ContainerInspect): Resolved {
  const problem = notRunning(c);
  if (problem !== null) throw problem;
  return { place: placeOf(c), inspect: c };
}

async function inspectByRef(engine: EngineClient, name: string, ref: DockerRef): Promise<ContainerInspect> {
  try {
    return (await engine.json<ContainerInspect>('GET', `/containers/${encodeURIComponent(name)}/json`)).body;
  } catch (err) {
    if (err instanceof EngineError && err.status === 404) {
      throw new BridgeError('container-not-found', `no Docker ${describeDockerRef(ref)} (by name or ID prefix); list them with: docker ps`, { detail: { name } });
    }
    // moby: "multiple IDs found with provided prefix: ab" (400, InvalidParameter).
    if (err instanceof EngineError && err.status === 400 && /multiple|ambiguous/i.test(err.message)) {
      throw new BridgeError('container-not-found', `"${name}" is the start of several container IDs; give more of the ID, or the container's name`, { detail: { name, message: err.message } });
    }
    throw engineFailure(err, engine.endpoint, `looking up container "${name}"`);
  }
}

async function inspectOrNull(engine: EngineClient, id: string): Promise<ContainerInspect | null> {
  try {
    return (await engine.json<ContainerInspect>('GET', `/containers/${encodeURIComponent(id)}/json`)).body;
  } catch (err) {
    if (err instanceof EngineError && (err.status === 404 || err.status === 400)) return null;
    throw engineFailure(err, engine.endpoint, `looking up container "${id}"`);
  }
}

async function findComposeContainer(engine: EngineClient, ref: Extract<DockerRef, { kind: 'compose' }>): Promise<ContainerInspect | null> {
  const filters = JSON.stringify({ label: [`${COMPOSE_PROJECT}=${ref.project}`, `${COMPOSE_SERVICE}=${ref.service}`] });
  let list: ContainerSummary[];
  try {
    list = (await engine.json<ContainerSummary[]>('GET', `/containers/json?all=true&filters=${encodeURIComponent(filters)}`)).body ?? [];
  } catch (err) {
    throw engineFailure(err, engine.endpoint, `listing the containers of Compose project "${ref.project}"`);
  }
  if (list.length === 0) return null;
  const numbered = list
    .map((c) => ({ c, n: Number(c.Labels?.[COMPOSE_NUMBER]) }))
    .map(({ c, n }) => ({ c, n: Number.isInteger(n) && n > 0 ? n : Number.MAX_SAFE_INTEGER }))
    .sort((a, b) => a.n - b.n);
  let chosen: ContainerSummary | undefined;
  if (ref.replica !== null) {
    chosen = numbered.find((x) => x.n === ref.replica)?.c;
    if (chosen === undefined) {
      const have = numbered.map((x) => x.n).filter((n) => n !== Number.MAX_SAFE_INTEGER);
      throw new BridgeError('container-not-found', `Compose service "${ref.service}" of project "${ref.project}" has no replica ${ref.replica} (it has ${have.length > 0 ? have.join(', ') : 'no numbered replicas'})`, {
        detail: { project: ref.project, service: ref.service, replica: ref.replica },
      });
    }
  } else {
    chosen = (numbered.find((x) => x.c.State === 'running') ?? numbered[0])?.c;
  }
  if (chosen === undefined) return null;
  return inspectOrNull(engine, chosen.Id);
}

/** Running containers for the target picker (src/web/), as facts the policy's Docker rules match. */
export async function listContainers(engine: EngineClient, limit: number): Promise<ListedPlace[]> {
  const list = (await engine.json<ContainerSummary[]>('GET', '/containers/json')).body ?? [];
  return list.slice(0, limit).flatMap((c) => {
    const name = (c.Names?.[0] ?? '').replace(/^\//, '');
    if (name === '') return [];
    const labels = c.Labels ?? {};
    const docker = { name, id: c.Id, project: labels[COMPOSE_PROJECT] ?? null, service: labels[COMPOSE_SERVICE] ?? null, labels };
    return [{ target: name, namespace: '', pod: name, container: name, docker }];
  });
}
