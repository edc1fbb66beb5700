/** The PROXY protocol parser against headers as HAProxy writes them (bytes from its spec's layout). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProxyHeader, ProxyProtocolError } from '../../src/ssh/proxy-protocol.ts';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
function v2(verCmd: number, famProto: number, body: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([SIG, Buffer.from([verCmd, famProto]), len, body]);
}
const ssh = Buffer.from('SSH-2.0-OpenSSH_9.2\r\n');

describe('PROXY protocol v1', () => {
  it('reads TCP4 and TCP6 lines and where the client bytes start', () => {
    const line = Buffer.from('PROXY TCP4 192.0.2.7 10.0.0.1 51234 2222\r\n');
    assert.deepEqual(parseProxyHeader(Buffer.concat([line, ssh])), { version: 1, source: { address: '192.0.2.7', port: 51234, family: 'IPv4' }, length: line.length });
    const six = Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 65535 22\r\n');
    assert.deepEqual(parseProxyHeader(six)?.source, { address: '2001:db8::7', port: 65535, family: 'IPv6' });
    assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff:f...f:ffff 1 2\r\n'))?.source, null);
  });

  it('waits for more bytes when the line is not complete', () => {
    assert.equal(parseProxyHeader(Buffer.from('PRO')), null);
    assert.equal(parseProxyHeader(Buffer.from('PROXY TCP4 192.0.2.7 10.0.')), null);
  });

  it('refuses anything not exactly as the spec writes it', () => {
    for (const bad of [
      'PROXY TCP4 192.0.2.7 10.0.0.1 51234\r\n', // a field missing
      'PROXY TCP4  192.0.2.7 10.0.0.1 1 2\r\n', // two spaces
      'PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n', // v6 in TCP4
      'PROXY TCP4 192.0.2.7 10.0.0.1 051234 2222\r\n', // leading zero
      'PROXY TCP4 192.0.2.7 10.0.0.1 70000 2222\r\n', // port out of range
      'PROXY UDP4 192.0.2.7 10.0.0.1 1 2\r\n',
      `PROXY TCP4 ${'1'.repeat(120)}\r\n`, // longer than 107 bytes
      'SSH-2.0-OpenSSH_9.2\r\n', // no header at all
      'GET / HTTP/1.1\r\n',
    ]) {
      assert.throws(() => parseProxyHeader(Buffer.from(bad)), ProxyProtocolError, bad);
    }
    assert.throws(() => parseProxyHeader(Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`)), /longer than 107 bytes/);
  });
});

describe('PROXY protocol v2', () => {
  it('reads IPv4 and IPv6 PROXY headers, skipping TLVs', () => {
    const body4 = Buffer.from([192, 0, 2, 7, 10, 0, 0, 1, 0xc8, 0x22, 0x08, 0xae]);
    const tlv = Buffer.from([0x04, 0x00, 0x01, 0x00]); // PP2_TYPE_NOOP
    const h4 = v2(0x21, 0x11, Buffer.concat([body4, tlv]));
    assert.deepEqual(parseProxyHeader(Buffer.concat([h4, ssh])), { version: 2, source: { address: '192.0.2.7', port: 0xc822, family: 'IPv4' }, length: h4.length });
    const src6 = Buffer.from('20010db8000000000000000000000007', 'hex');
    const dst6 = Buffer.from('20010db8000000000000000000000001', 'hex');
    const h6 = v2(0x21, 0x21, Buffer.concat([src6, dst6, Buffer.from([0x01, 0xbb, 0x08, 0xae])]));
    assert.deepEqual(parseProxyHeader(h6)?.source, { address: '2001:db8::7', port: 443, family: 'IPv6' });
  });

  it('treats LOCAL (the balancer\'s own health check) as no client address', () => {
    assert.deepEqual(parseProxyHeader(v2(0x20, 0x00, Buffer.alloc(0))), { version: 2, source: null, length: 16 });
  });

  it('waits for the whole header, byte by byte', () => {
    const h = v2(0x21, 0x11, Buffer.from([192, 0, 2, 7, 10, 0, 0, 1, 0, 1, 0, 2]));
    for (let n = 1; n < h.length; n++) assert.equal(parseProxyHeader(h.subarray(0, n)), null, `${n} bytes`);
    assert.equal(parseProxyHeader(h)?.source?.address, '192.0.2.7');
  });

  it('refuses wrong versions, commands, transports and short address blocks', () => {
    assert.throws(() => parseProxyHeader(v2(0x11, 0x11, Buffer.alloc(12))), /version 1, expected 2/);
    assert.throws(() => parseProxyHeader(v2(0x22, 0x11, Buffer.alloc(12))), /unknown command 2/);
    assert.throws(() => parseProxyHeader(v2(0x21, 0x12, Buffer.alloc(12))), /not a stream/);
    assert.throws(() => parseProxyHeader(v2(0x21, 0x11, Buffer.alloc(8))), /8 address bytes for IPv4, need 12/);
    assert.throws(() => parseProxyHeader(v2(0x21, 0x21, Buffer.alloc(12))), /need 36/);
    assert.throws(() => parseProxyHeader(v2(0x21, 0x31, Buffer.alloc(216))), /unix-socket/);
  });
});
