// test-budget: file 180 s, test 90 s
/**
 * VS Code Remote-SSH as far as it runs here: the real OpenSSH client with `ssh -T -D PORT` and a
 * here-doc bash script on stdin, as Remote-SSH runs it. The script checks what VS Code's does
 * (uname -s, getconf LONG_BIT, tar, a writable $HOME), starts a small HTTP/WebSocket server "in
 * the pod" on 127.0.0.1, prints its port the way VS Code's script does, and stays until stdin
 * closes. A test client then reaches it through the SOCKS port, as VS Code reaches its server.
 * Run on the local backend and on Kubernetes (SPDY in WebSocket, the fake kube-apiserver).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';
import { REPO } from '../helpers/paths.ts';
import { closedPort, waitForListener } from '../helpers/pod-services.ts';
import { sshArgs } from '../helpers/ssh-client.ts';

const SERVER = `
const http = require('http');
const { WebSocketServer } = require(${JSON.stringify(`${REPO}/node_modules/ws`)});
const server = http.createServer((req, res) => res.end('vscode-server says hi ' + req.url));
new WebSocketServer({ server }).on('connection', (ws) => ws.on('message', (m) => ws.send('echo:' + m)));
server.listen(0, '127.0.0.1', () => console.log('listeningOn==' + server.address().port + '=='));
process.stdin.on('end', () => process.exit(0)); process.stdin.resume();
`;

const SCRIPT = `
set -e
echo "platform==$(uname -s)== arch==$(uname -m)== bits==$(getconf LONG_BIT)=="
DIR="$HOME/.vscode-server-podbridge-test-$$"
trap 'rm -rf "$DIR"' EXIT
mkdir -p "$DIR/bin"
cat > "$DIR/bin/server.js" <<'EOS'
${SERVER}
EOS
tar -C "$DIR" -cf "$DIR/server.tar" bin
tar -tf "$DIR/server.tar"
echo "home==writable=="
node "$DIR/bin/server.js"
`;

/** A SOCKS5 CONNECT to host:port through the ssh -D port (what VS Code's client does). */
function socksConnect(proxyPort: number, host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(proxyPort, '127.0.0.1');
    s.once('error', reject);
    s.once('connect', () => s.write(Buffer.from([5, 1, 0])));
    let stage = 0;
    s.on('data', function onData(b: Buffer) {
      if (stage === 0) {
        if (b[0] !== 5 || b[1] !== 0) return reject(new Error('SOCKS: no acceptable method'));
        stage = 1;
        const name = Buffer.from(host);
        const req = Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 255])]);
        s.write(req);
      } else {
        s.off('data', onData);
        if (b[1] !== 0) return reject(new Error(`SOCKS: connect refused (reply ${b[1]})`));
        resolve(s);
      }
    });
  });
}

function remoteSsh(kind: string, start: () => Promise<{ bridge: TestBridge; login: string; expose(port: number): void; stop(): Promise<void> }>): void {
  describe(`VS Code Remote-SSH style: ${kind}`, () => {
    let stop: (() => Promise<void>) | null = null;
    after(async () => {
      await stop?.();
    });

    it('ssh -T -D with a bash script: checks, a server in the pod, reached through SOCKS (HTTP and WebSocket)', async () => {
      const env = await start();
      stop = env.stop;
      const socksPort = await closedPort();
      const args = [...sshArgs(env.bridge.port, env.bridge.key, ['-T', '-D', `127.0.0.1:${socksPort}`]), `${env.login}@127.0.0.1`, 'bash'];
      const ssh = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      ssh.stdout.on('data', (b: Buffer) => (out += b.toString()));
      ssh.stderr.on('data', (b: Buffer) => (err += b.toString()));
      ssh.stdin.write(SCRIPT);
      try {
        const deadline = Date.now() + 60_000;
        while (!/listeningOn==(\d+)==/.test(out)) {
          if (Date.now() > deadline || ssh.exitCode !== null) throw new Error(`no listeningOn line; stdout: ${JSON.stringify(out)}; stderr: ${JSON.stringify(err)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.match(out, /platform==Linux== arch==\S+== bits==(64|32)==/);
        assert.match(out, /^bin\/$/m, 'tar works');
        assert.match(out, /home==writable==/);
        const port = Number(/listeningOn==(\d+)==/.exec(out)?.[1]);
        env.expose(port);
        await waitForListener(socksPort);

        const http = await socksConnect(socksPort, '127.0.0.1', port);
        const body = await new Promise<string>((resolve) => {
          let got = '';
          http.on('data', (b: Buffer) => (got += b.toString()));
          http.on('close', () => resolve(got));
          http.write('GET /version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
        });
        assert.match(body, /vscode-server says hi \/version/);

        // ws needs its socket synchronously: connect through SOCKS first, then hand it over.
        const tunnel = await socksConnect(socksPort, '127.0.0.1', port);
        const client = new WebSocket(`ws://127.0.0.1:${port}/`, { createConnection: () => tunnel });
        const reply = await new Promise<string>((resolve, reject) => {
          client.on('open', () => client.send('ping'));
          client.on('message', (m) => resolve(m.toString()));
          client.on('error', reject);
        });
        assert.equal(reply, 'echo:ping');
        client.close();
      } finally {
        ssh.stdin.end();
        await new Promise((r) => (ssh.exitCode !== null ? r(undefined) : ssh.once('exit', r)));
      }
    });
  });
}

remoteSsh('local backend', async () => {
  const bridge = await startTestBridge({ backend: 'local' });
  return { bridge, login: 'default.local', expose: () => undefined, stop: () => bridge.close() };
});

remoteSsh('kubernetes (SPDY in WebSocket)', async () => {
  const cluster: TestCluster = await startTestCluster();
  const bridge = await startTestBridge({ backend: 'kubernetes', kubeconfig: cluster.kubeconfig });
  return {
    bridge,
    login: 'team-a.web-1',
    // The fake pod's processes are local: the port it listens on is the pod's port.
    expose: (port) => cluster.api.exposePodPort('team-a', 'web-1', port, port),
    stop: async () => {
      await bridge.close();
      await cluster.stop();
    },
  };
});
