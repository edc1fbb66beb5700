/**
 * ssh2 patch 008 (patches/, docs/ssh2-patches.md): the server uncorks its socket once the
 * event-loop turn's I/O callbacks have run, so packets written one per tick (as any piped
 * Readable hands chunks over, and as src/ssh/channel-output.ts does) leave in one writev().
 * With patch 003 alone the socket was uncorked on the next tick, after the first packet.
 */
import assert from 'node:assert/strict';
import type { AddressInfo, Socket } from 'node:net';
import { describe, it } from 'node:test';
import ssh2 from 'ssh2';
import type { Connection, ServerChannel } from 'ssh2';

const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;

type Counted = Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };

/** Counts the socket's writes (each one write(2) or writev(2) in libuv). */
function countWrites(sock: Counted): { count: number } {
  const c = { count: 0 };
  const write = sock._write;
  const writev = sock._writev;
  sock._write = function (this: Socket, ...a: unknown[]) {
    c.count++;
    return write.apply(this, a);
  };
  sock._writev = function (this: Socket, ...a: unknown[]) {
    c.count++;
    return writev.apply(this, a);
  };
  return c;
}

const nextTick = () => new Promise<void>((resolve) => process.nextTick(resolve));
const immediate = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('ssh2 patch 008: uncork after the I/O of the turn', () => {
  it('packets written one per tick leave in one socket write, whole and in order', async () => {
    let writesInBurst = -1;
    const server = new ssh2.Server({ hostKeys: [hostKey] }, (client: Connection) => {
      const counter = countWrites((client as unknown as { _sock: Counted })._sock);
      client.on('error', () => undefined);
      client.on('authentication', (ctx) => ctx.accept());
      client.on('ready', () => {
        client.on('session', (accept) => {
          accept().on('exec', (acceptExec) => {
            const channel: ServerChannel = acceptExec();
            void (async () => {
              // Everything from here runs inside the I/O callback that read the exec request
              // and the ticks after it, in one event-loop turn.
              counter.count = 0;
              for (const piece of ['one ', 'two ', 'three ', 'four\n']) {
                channel.write(piece);
                await nextTick();
              }
              await immediate();
              writesInBurst = counter.count;
              channel.exit(0);
              channel.end();
            })();
          });
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const output = await new Promise<string>((resolve, reject) => {
        const c = new ssh2.Client();
        c.on('error', reject);
        c.on('ready', () => {
          c.exec('burst', (err, ch) => {
            if (err) return reject(err);
            let out = '';
            ch.on('data', (b: Buffer) => (out += b.toString()));
            ch.on('close', () => {
              c.end();
              resolve(out);
            });
          });
        });
        c.connect({ host: '127.0.0.1', port, username: 'u', password: 'p', hostVerifier: () => true });
      });
      assert.equal(output, 'one two three four\n');
      // The exec reply and four data packets: one writev. With patch 003's next-tick uncork
      // this was one write per packet (4: the exec reply went out with the first).
      assert.equal(writesInBurst, 1);
    } finally {
      server.close();
    }
  });
});
