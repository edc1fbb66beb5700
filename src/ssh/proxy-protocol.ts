/**
 * The PROXY protocol (HAProxy's proxy-protocol.txt), versions 1 (text) and 2 (binary), as a
 * receiver: a load balancer puts one header before the client's bytes saying who the client is.
 * Parsed strictly, as the spec asks of receivers: a header that is not exactly right ends the
 * connection, because a lenient parser is a way to forge client addresses. Only connections from
 * the configured peers are read this way (--proxy-protocol-from); see server.ts.
 */
import net from 'node:net';

/** The v2 signature: CR LF CR LF NUL CR LF "QUIT" LF. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ');
/** "PROXY TCP6 " + 2 x 39 + 2 x 5 + 4 spaces + CRLF: the spec's worst case. */
const V1_MAX = 107;
const V2_FIXED = 16;

export class ProxyProtocolError extends Error {}

export interface ProxiedAddress {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

export interface ProxyHeader {
  version: 1 | 2;
  /** The client as the load balancer saw it; null for LOCAL (v2) or UNKNOWN (v1): a health check
   *  or a connection of the balancer's own, where the socket's own address is the truth. */
  source: ProxiedAddress | null;
  /** Bytes the header took, the client's data starts after them. */
  length: number;
}

/** Parses a header at the start of `buf`; null when more bytes are needed. Throws on anything else. */
export function parseProxyHeader(buf: Buffer): ProxyHeader | null {
  const v2 = startsWith(buf, V2_SIGNATURE);
  const v1 = startsWith(buf, V1_PREFIX);
  if (v2 === 'no' && v1 === 'no') throw new ProxyProtocolError(`no PROXY protocol header (the connection starts with ${JSON.stringify(buf.subarray(0, 16).toString('latin1'))})`);
  if (v2 === 'yes') return parseV2(buf);
  if (v1 === 'yes') return parseV1(buf);
  return null;
}

function startsWith(buf: Buffer, prefix: Buffer): 'yes' | 'no' | 'maybe' {
  const n = Math.min(buf.length, prefix.length);
  if (!buf.subarray(0, n).equals(prefix.subarray(0, n))) return 'no';
  return buf.length >= prefix.length ? 'yes' : 'maybe';
}

function parseV1(buf: Buffer): ProxyHeader | null {
  const end = buf.indexOf('\r\n');
  if (end < 0) {
    if (buf.length >= V1_MAX) throw new ProxyProtocolError(`PROXY v1 header longer than ${V1_MAX} bytes`);
    return null;
  }
  const length = end + 2;
  if (length > V1_MAX) throw new ProxyProtocolError(`PROXY v1 header longer than ${V1_MAX} bytes`);
  const line = buf.subarray(0, end).toString('latin1');
  const words = line.split(' ');
  if (words[1] === 'UNKNOWN') return { version: 1, source: null, length };
  if (words.length !== 6) throw new ProxyProtocolError(`PROXY v1 header malformed: ${JSON.stringify(line)}`);
  const [, proto, src, dst, sport, dport] = words as [string, string, string, string, string, string];
  const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
  if (family === 0) throw new ProxyProtocolError(`PROXY v1 header: unknown protocol ${JSON.stringify(proto)}`);
  for (const a of [src, dst]) {
    if (net.isIP(a) !== family) throw new ProxyProtocolError(`PROXY v1 header: ${JSON.stringify(a)} is not an ${proto === 'TCP4' ? 'IPv4' : 'IPv6'} address`);
  }
  port(dport); // checked, not used
  return { version: 1, source: { address: src, port: port(sport), family: family === 4 ? 'IPv4' : 'IPv6' }, length };
}

function port(text: string): number {
  // Decimal without leading zeros or signs, 0 to 65535, as the spec writes them.
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text) || Number(text) > 65535) throw new ProxyProtocolError(`PROXY v1 header: bad port ${JSON.stringify(text)}`);
  return Number(text);
}

function parseV2(buf: Buffer): ProxyHeader | null {
  if (buf.length < V2_FIXED) return null;
  const verCmd = buf[12]!;
  const famProto = buf[13]!;
  const len = buf.readUInt16BE(14);
  if (verCmd >> 4 !== 2) throw new ProxyProtocolError(`PROXY v2 header: version ${verCmd >> 4}, expected 2`);
  const command = verCmd & 0x0f;
  if (command > 1) throw new ProxyProtocolError(`PROXY v2 header: unknown command ${command}`);
  if (buf.length < V2_FIXED + len) return null;
  const length = V2_FIXED + len;
  if (command === 0) return { version: 2, source: null, length }; // LOCAL: the balancer's own check
  const family = famProto >> 4;
  const proto = famProto & 0x0f;
  // Only TCP is forwarded to an SSH port; UNSPEC may be sent for "unknown" and means: use the socket.
  if (family === 0) return { version: 2, source: null, length };
  if (proto !== 1) throw new ProxyProtocolError(`PROXY v2 header: transport ${proto} is not a stream (TCP)`);
  const body = buf.subarray(V2_FIXED, length);
  if (family === 1) {
    if (len < 12) throw new ProxyProtocolError(`PROXY v2 header: ${len} address bytes for IPv4, need 12`);
    return { version: 2, source: { address: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8), family: 'IPv4' }, length };
  }
  if (family === 2) {
    if (len < 36) throw new ProxyProtocolError(`PROXY v2 header: ${len} address bytes for IPv6, need 36`);
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(body.readUInt16BE(i).toString(16));
    return { version: 2, source: { address: compressIPv6(groups), port: body.readUInt16BE(32), family: 'IPv6' }, length };
  }
  if (family === 3) throw new ProxyProtocolError('PROXY v2 header: a unix-socket client cannot be used as a source address');
  throw new ProxyProtocolError(`PROXY v2 header: unknown address family ${family}`);
}

/** The canonical text form (RFC 5952), as Node reports socket addresses. */
function compressIPv6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/**
 * Reads the header off `socket` and gives back the bytes after it (the client's SSH version
 * line may come in the same packet), unshifted so the SSH layer reads them first.
 */
export function readProxyHeader(socket: net.Socket): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err: Error | null, header?: ProxyHeader) => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      if (err) reject(err);
      else resolve(header!);
    };
    const onEnd = () => done(new ProxyProtocolError('connection closed before a complete PROXY protocol header'));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      let header: ProxyHeader | null;
      try {
        header = parseProxyHeader(buf);
      } catch (err) {
        return done(err as Error);
      }
      if (header === null) {
        if (buf.length > V2_FIXED + 0xffff) done(new ProxyProtocolError('PROXY protocol header too long'));
        return;
      }
      socket.pause();
      const rest = buf.subarray(header.length);
      done(null, header);
      if (rest.length > 0) socket.unshift(rest);
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}

/** From here on the socket reports the client's address (ssh2, limits, logs and audit read these). */
export function adoptProxiedAddress(socket: net.Socket, source: ProxiedAddress): void {
  Object.defineProperty(socket, 'remoteAddress', { value: source.address, configurable: true });
  Object.defineProperty(socket, 'remotePort', { value: source.port, configurable: true });
  Object.defineProperty(socket, 'remoteFamily', { value: source.family, configurable: true });
}
