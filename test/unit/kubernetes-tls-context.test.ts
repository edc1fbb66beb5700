/**
 * Connections to the API server share one TLS context per set of credentials
 * (src/backends/kubernetes/api/tls-context.ts) instead of one each (~20 KiB of native memory per
 * session), and a rotated CA file still takes effect at the next request.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { KubeApiClient } from '../../src/backends/kubernetes/api/client.ts';
import { upgradeWebSocket } from '../../src/backends/kubernetes/channel/upgrade.ts';
import { BridgeError } from '../../src/errors.ts';
import { loadKubeconfig } from '../../src/backends/kubernetes/api/kubeconfig.ts';
import { makeServingMaterial, type ServingMaterial } from '../fixtures/kube-apiserver/tls.ts';

describe('TLS context shared by API-server connections', () => {
  let dir: string;
  let first: ServingMaterial;
  let second: ServingMaterial;
  let server: https.Server;
  let api: KubeApiClient;
  const caFile = () => path.join(dir, 'ca.pem');

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-tls-context-'));
    fs.mkdirSync(path.join(dir, 'a'));
    fs.mkdirSync(path.join(dir, 'b'));
    [first, second] = await Promise.all([makeServingMaterial(path.join(dir, 'a')), makeServingMaterial(path.join(dir, 'b'))]);
    server = https.createServer({ cert: first.certPem, key: first.keyPem }, (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end('{"gitVersion":"v1.33.0"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    fs.writeFileSync(caFile(), first.caPem);
    const kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: c`,
        `  cluster: {server: "https://127.0.0.1:${(server.address() as AddressInfo).port}", certificate-authority: "${caFile()}"}`,
        'users:',
        '- name: u',
        '  user: {token: t}',
        'contexts:',
        '- name: x',
        '  context: {cluster: c, user: u}',
        'current-context: x',
        '',
      ].join('\n'),
    );
    const loaded = loadKubeconfig({ kubeconfig });
    api = new KubeApiClient(loaded.kc, { server: loaded.server, contextName: loaded.contextName });
  });

  after(() => {
    server?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('every request gets the same context, and the server certificate is still verified against the CA', async () => {
    const a = await api.connectionOptions({});
    const b = await api.connectionOptions({});
    assert.ok((a as { secureContext?: unknown }).secureContext, 'a shared context');
    assert.equal((a as { secureContext?: unknown }).secureContext, (b as { secureContext?: unknown }).secureContext);
    // No per-connection copy of the CA left to build a context of its own from.
    assert.equal(a.ca, undefined);
    assert.equal(((a.agent as unknown as { options: { ca?: unknown } }).options).ca, undefined);
    const answer = await api.getJson('/version', {});
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { gitVersion: 'v1.33.0' });

    // A server certificate from another CA is refused: the shared context verifies as before.
    server.setSecureContext({ cert: second.certPem, key: second.keyPem });
    await assert.rejects(api.getJson('/version', {}), /certificate|verify|issuer/i);
  });

  it('a rotated CA file takes effect at the next request', async () => {
    server.setSecureContext({ cert: second.certPem, key: second.keyPem });
    const before = (await api.connectionOptions({})) as { secureContext?: unknown };
    fs.writeFileSync(caFile(), second.caPem);
    const after = (await api.connectionOptions({})) as { secureContext?: unknown };
    assert.notEqual(after.secureContext, before.secureContext);
    const answer = await api.getJson('/version', {});
    assert.equal(answer.status, 200);
  });

  it('an upgraded socket keeps neither the request headers (the Bearer token) nor the long query of its URL', async () => {
    fs.writeFileSync(caFile(), second.caPem);
    server.setSecureContext({ cert: second.certPem, key: second.keyPem });
    const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => [...offered][0] ?? false });
    let authorization: string | undefined;
    const onUpgrade = (req: import('node:http').IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => {
      authorization = req.headers.authorization;
      wss.handleUpgrade(req, socket, head, (peer) => peer.on('error', () => {}));
    };
    server.on('upgrade', onUpgrade);
    let ws: WebSocket | undefined;
    try {
      ws = await upgradeWebSocket(
        api,
        {},
        {
          path: '/api/v1/namespaces/ns/pods/p/exec',
          query: new URLSearchParams({ command: 'x'.repeat(2000) }),
          protocols: ['v5.channel.k8s.io'],
          what: 'exec',
          closedEarly: 'exec-failed',
          refused: (status) => new BridgeError('exec-failed', `refused with ${status}`),
        },
        (socket) => socket,
      );
      assert.equal(authorization, 'Bearer t', 'the token went with the request');
      const port = (server.address() as AddressInfo).port;
      assert.equal(ws.url, `wss://127.0.0.1:${port}/api/v1/namespaces/ns/pods/p/exec`);
      // Node keeps a socket's connect options for its whole life (kConnectOptions).
      const socket = (ws as unknown as { _socket: object })._socket;
      const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'connect-options');
      assert.ok(sym, "Node's connect options are where this test looks");
      const kept = (socket as Record<symbol, Record<string, unknown>>)[sym]!;
      assert.equal(kept.headers, undefined);
      assert.equal(kept.finishRequest, undefined);
      assert.doesNotMatch(JSON.stringify(kept, (_k, v: unknown) => (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) !== Object.prototype ? undefined : v)), /Bearer|authorization/i);
      assert.equal(kept.servername, undefined, 'no SNI for an IP address, as an agent would do');
    } finally {
      ws?.terminate();
      server.off('upgrade', onUpgrade);
      wss.close();
    }
  });
});
