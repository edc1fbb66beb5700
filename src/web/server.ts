/**
 * The browser door (`--web-listen`): one HTTP(S) server in the bridge's process that serves the
 * page (bundled at build time, page/), its small JSON API (who am I, the target picker, login,
 * logout) and the terminal WebSocket (terminal-upgrade.ts → the TerminalHub). docs/web.md has the
 * security model; the rules in short: HTTPS unless on loopback (config.ts refuses the rest),
 * strict CSP and no framing, identities only from a trusted proxy's header or a cookie minted
 * from a one-time link, the page's own Origin on every state-changing request and upgrade.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Backend } from '../backends/backend.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Identity, PolicySource } from '../policy/index.ts';
import { BrowserLogins, clearedCookie, loginCookie, readCookie } from './auth/browser-logins.ts';
import { OneTimeLinks } from './auth/one-time-links.ts';
import { ProxyLogin } from './auth/proxy-login.ts';
import { loadPageFiles, type PageFiles } from './page-files.ts';
import { pickerList } from './picker.ts';
import { newNonce, setSecurityHeaders } from './security-headers.ts';
import { TerminalUpgrade, type TerminalSink } from './terminal-upgrade.ts';
import { WhoIsIt } from './who.ts';

export type { TerminalSink, TerminalOpen } from './terminal-upgrade.ts';

export interface WebDoor {
  readonly address: AddressInfo;
  /** The origin links are printed with (--web-url, else from the listen address). */
  readonly origin: string;
  /** A one-time login link for this identity (ssh web-login@bridge); `target` opens a terminal. */
  mintLoginLink(identity: Identity, target: string | null): string;
  /** Gives the door its terminals (the TerminalHub); until then upgrades are refused. */
  attach(sink: TerminalSink): void;
  /** Stops accepting and closes sockets no terminal took; the hub's owner (bridge.ts) ends its sessions. */
  close(): Promise<void>;
}

export interface WebDoorDeps {
  config: Config['web'];
  policy: PolicySource;
  backend: Backend;
  log: Logger;
  /** Page files; default: the bundle beside this module. */
  page?: PageFiles;
}

const MAX_BODY = 4096;

export async function startWebDoor(deps: WebDoorDeps): Promise<WebDoor> {
  const { config, policy, backend } = deps;
  const listen = config.listen;
  if (listen === null) throw new Error('internal: startWebDoor without --web-listen');
  const log = deps.log.child({ door: 'web' });
  const page = deps.page ?? loadPageFiles();
  const tls = config.tlsCert !== null && config.tlsKey !== null;
  const secure = tls || (config.url?.startsWith('https:') ?? false);
  const links = new OneTimeLinks();
  const logins = new BrowserLogins(config.loginLifetimeMs);
  const proxy = new ProxyLogin(config);
  const who = new WhoIsIt(policy, proxy, logins, log);
  let sink: TerminalSink | null = null;
  const scheme = tls ? 'https' : 'http';
  /** The page's own origin: what Origin headers must be. */
  const originOf = (req: http.IncomingMessage): string => config.url ?? `${scheme}://${req.headers.host ?? ''}`;
  const upgrade = new TerminalUpgrade({ who, origin: originOf, sink: () => sink, log });

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const json = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      setSecurityHeaders(res, tls);
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...extra });
      res.end(JSON.stringify(body));
    };
    const sameOrigin = () => req.headers.origin === originOf(req);

    if (path === '/' || path === '/login' || path === '/observe' || path.startsWith('/t/')) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'only GET' });
      const nonce = newNonce();
      setSecurityHeaders(res, tls, nonce);
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      return void res.end(req.method === 'HEAD' ? undefined : page.html.replaceAll('__STYLE_NONCE__', nonce));
    }
    const asset = page.assets.get(path);
    if (asset !== undefined) {
      setSecurityHeaders(res, tls);
      res.writeHead(200, { 'Content-Type': asset.type, 'Cache-Control': 'no-cache' });
      return void res.end(req.method === 'HEAD' ? undefined : asset.body);
    }
    if (path === '/api/login') {
      // Only this page's script may log in (no login CSRF): its Origin, a JSON body.
      if (req.method !== 'POST' || !sameOrigin()) return json(403, { error: 'log in from the page the link opens' });
      return void readBody(req, (body) => {
        let token = '';
        try {
          token = String((JSON.parse(body ?? '') as { token?: unknown }).token ?? '');
        } catch {
          /* refused below */
        }
        const redeemed = links.redeem(token);
        if (!redeemed.ok) {
          log.info({ remote: req.socket.remoteAddress }, `web: ${redeemed.message}`);
          return json(403, { error: redeemed.message });
        }
        const cookie = logins.create(redeemed.identity);
        log.info({ identity: redeemed.identity.name, remote: req.socket.remoteAddress }, 'web: browser logged in with a one-time link');
        json(200, { identity: redeemed.identity.name, target: redeemed.target }, { 'Set-Cookie': loginCookie(cookie.value, cookie.maxAgeSeconds, secure) });
      });
    }
    if (path === '/api/logout') {
      if (req.method !== 'POST' || !sameOrigin()) return json(403, { error: 'log out from the page' });
      const cookie = readCookie(req.headers.cookie);
      if (cookie !== null) logins.end(cookie);
      return json(200, { ok: true }, { 'Set-Cookie': clearedCookie(secure) });
    }
    if (path === '/api/me' || path === '/api/targets') {
      if (req.method !== 'GET') return json(405, { error: 'only GET' });
      const w = who.check(req);
      if (!w.ok) return json(w.status, { error: w.message });
      if (path === '/api/me') return json(200, { identity: w.identity.name, via: w.via, canLogout: w.via === 'cookie' });
      pickerList(backend, policy.current(), w.identity).then(
        (answer) => json(200, answer),
        (err: Error) => {
          log.warn({ identity: w.identity.name, err: err.message }, 'web: listing targets failed');
          json(502, { error: err.message.split('\n')[0] });
        },
      );
      return;
    }
    setSecurityHeaders(res, tls);
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  };

  const server = tls
    ? https.createServer({ cert: readPem(config.tlsCert!, '--web-tls-cert'), key: readPem(config.tlsKey!, '--web-tls-key') }, handler)
    : http.createServer(handler);
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  server.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => upgrade.handle(req, socket, head));
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: Error) => reject(new Error(`--web-listen ${listen.host}:${listen.port}: cannot listen: ${err.message}`)));
    server.listen(listen.port, listen.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const printedHost = ['0.0.0.0', '::'].includes(listen.host) ? os.hostname() : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const origin = config.url ?? `${scheme}://${printedHost}:${address.port}`;
  log.info({ address: `${address.address}:${address.port}`, tls, origin, trustedProxies: config.trustedProxies }, 'web door listening');

  return {
    address,
    origin,
    mintLoginLink(identity, target) {
      // The token travels in the fragment: browsers never send it to a server, a proxy log or a
      // Referer, and the page removes it from the address bar before anything else.
      return `${origin}/login#token=${links.mint(identity, target)}`;
    },
    attach(s) {
      sink = s;
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      upgrade.close();
    },
  };
}

function readPem(file: string, flag: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${flag} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

function readBody(req: http.IncomingMessage, done: (body: string | null) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_BODY) {
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
  req.on('error', () => undefined);
}
