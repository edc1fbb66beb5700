/** The Docker backend against a real dockerd started for the test (test/helpers/dockerd.ts). */
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { NOSHELL_IMAGE, TEST_IMAGE, startTestDockerd, type TestDockerd } from '../helpers/dockerd.ts';

export interface DockerWorld {
  dockerd: TestDockerd;
  bridge: TestBridge;
  close(): Promise<void>;
}

/** Containers every Docker test can use: `web` (running), Compose replicas shop.web+1/+2,
 *  `stopped` (exited 3), `distroless` (no /bin/sh). */
export async function startDockerWorld(extra: Parameters<typeof startTestBridge>[0] = {}, options: { tls?: boolean } = {}): Promise<DockerWorld> {
  const dockerd = await startTestDockerd(options);
  try {
    const run = (name: string, args: string[], image = TEST_IMAGE, cmd = ['sleep', '1000000']) =>
      dockerd.docker(['run', '-d', '--network', 'none', '--name', name, ...args, image, ...cmd]);
    // Side by side: each `docker run` mostly waits on the Engine (seconds each on a loaded machine).
    await Promise.all([
      run('web', []),
      ...[1, 2].map((n) =>
        run(`shop-web-${n}`, ['--label', 'com.docker.compose.project=shop', '--label', 'com.docker.compose.service=web', '--label', `com.docker.compose.container-number=${n}`, '--label', 'team=a']),
      ),
      dockerd.docker(['run', '--network', 'none', '--name', 'stopped', TEST_IMAGE, 'sh', '-c', 'exit 3']).catch(() => ''),
      run('distroless', [], NOSHELL_IMAGE, ['/usr/bin/busybox', 'sleep', '1000000']),
    ]);
    const bridge = await startTestBridge({ backend: 'docker', dockerHost: dockerd.host, ...extra });
    return {
      dockerd,
      bridge,
      close: async () => {
        await bridge.close();
        await dockerd.stop();
      },
    };
  } catch (err) {
    await dockerd.stop();
    throw err;
  }
}
