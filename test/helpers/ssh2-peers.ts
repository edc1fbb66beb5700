/**
 * Bare (patched) ssh2 peers for testing the ssh2 patch set on its own, without the bridge: a
 * server that accepts anyone and answers `exec`, and ssh2's own client.
 */
import type { AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import type { Connection } from 'ssh2';
// Not ssh2.utils.generateKeyPairSync: about 1 in 250 of its ed25519 keys drop a leading zero byte of
// the public key and its own parser refuses them ("Malformed OpenSSH private key", issue 16 loaded run 5).
import { generateHostKeyPair } from '../../src/ssh/keys.ts';

const hostKey = generateHostKeyPair('ed25519', 0, 'test host key').private;

export interface Ssh2TestServer {
  port: number;
  /** Errors of the server's connections (a failed key exchange lands here). */
  errors: Error[];
  /** The key exchange each connection negotiated, in order. */
  kex: string[];
  close(): void;
}

/** A server offering `kex` that accepts anyone and answers `exec` with `ran <command>`;
 *  `onConnection` sees each connection first. */
export async function startSsh2Server(kex: string[], onConnection?: (client: Connection) => void): Promise<Ssh2TestServer> {
  const errors: Error[] = [];
  const negotiated: string[] = [];
  const server = new ssh2.Server({ hostKeys: [hostKey], algorithms: { kex: kex as ssh2.KexAlgorithm[] } }, (client: Connection) => {
    onConnection?.(client);
    client.on('error', (err) => errors.push(err));
    client.on('handshake', (n) => negotiated.push(n.kex));
    client.on('authentication', (ctx) => ctx.accept());
    client.on('ready', () => {
      client.on('session', (accept) => {
        accept().on('exec', (acceptExec, _reject, info) => {
          const channel = acceptExec();
          channel.write(`ran ${info.command}\n`);
          channel.exit(0);
          channel.end();
        });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, errors, kex: negotiated, close: () => server.close() };
}

/** ssh2's own client runs `probe`: the negotiated kex and the output, or the error that ended it. */
export function ssh2Exec(port: number, kex: string[]): Promise<{ kex?: string; output?: string; error?: string }> {
  return new Promise((resolve) => {
    const client = new ssh2.Client();
    let negotiated: string | undefined;
    client.on('handshake', (n) => (negotiated = n.kex));
    client.on('error', (err) => resolve({ kex: negotiated, error: err.message }));
    client.on('ready', () => {
      client.exec('probe', (err, channel) => {
        if (err) return resolve({ kex: negotiated, error: err.message });
        let output = '';
        channel.on('data', (d: Buffer) => (output += d.toString()));
        channel.on('close', () => {
          client.end();
          resolve({ kex: negotiated, output });
        });
      });
    });
    client.connect({ host: '127.0.0.1', port, username: 'u', algorithms: { kex: kex as ssh2.KexAlgorithm[] } });
  });
}
