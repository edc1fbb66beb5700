import { after } from 'node:test';
import { conformance, type ErrorCase } from './suite.ts';
import { startDockerWorld, type DockerWorld } from './docker-harness.ts';
import { startTestBridge } from '../helpers/bridge.ts';

// One dockerd with its containers for the whole file (starting one and importing its images is
// most of a start's cost); each start() gets a bridge of its own with the options asked for.
let world: Promise<DockerWorld> | null = null;
after(async () => {
  if (world) await (await world).close();
});

const errorCases: ErrorCase[] = [
  { what: 'no such container', login: 'ghost', message: /no Docker container "ghost" \(by name or ID prefix\); list them with: docker ps/ },
  { what: 'container not running (says how it ended)', login: 'stopped', message: /Docker container "stopped" is not running \(exited with code 3 at [^)]+\); start it with: docker start stopped/ },
  { what: 'unknown Compose replica', login: 'shop.web+7', message: /Compose service "web" of project "shop" has no replica 7 \(it has 1, 2\)/ },
  { what: 'unknown Compose service', login: 'shop.db', message: /no container of Compose service "db" in project "shop"; list them with: docker compose -p shop ps/ },
  {
    what: 'no shell in the image, for a command that needs one',
    login: 'distroless',
    command: 'echo should-not-run | cat',
    message: /Docker container "distroless" has no \/bin\/sh, and this command needs one \(pipes, redirections, variables, globs or several commands\); run a plain command/,
  },
  { what: 'a Kubernetes name on a Docker-only bridge', login: 'k8s~team-a.web-1', message: /this bridge serves no Kubernetes/ },
];

conformance({
  name: 'docker backend (real dockerd)',
  stdinEof: true,
  errorCases,
  async start(options = {}) {
    world ??= startDockerWorld();
    const w = await world;
    const bridge = await startTestBridge({ backend: 'docker', dockerHost: w.dockerd.host, ...options });
    return { port: bridge.port, key: bridge.key, login: 'web', logs: bridge.logs, shutdown: bridge.shutdown, close: () => bridge.close() };
  },
});
