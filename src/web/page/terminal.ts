/**
 * One terminal: xterm.js fitted to the window, one WebSocket (protocol in docs/web.md). The first
 * size is measured before the socket opens; later sizes are coalesced. The session id lives in
 * sessionStorage (per tab, never in the URL), so a refresh or a dropped connection resumes the same
 * process with its screen restored, until the server's grace period ends it.
 */
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { $, el, notice } from './ui.ts';

export type Open = { kind: 'new'; target: string } | { kind: 'observe'; session: string };

const RESIZE_COALESCE_MS = 100;
const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 8000];
/** Keystrokes held while the page reconnects (a paste included), then sent in order. */
const HELD_INPUT_MAX = 64 * 1024;
const encoder = new TextEncoder();

type ServerMessage =
  | { type: 'session'; id: string; target: string; resumed: boolean; observer: boolean; graceSeconds: number }
  | { type: 'screen'; data: string }
  | { type: 'notice'; message: string }
  | { type: 'error'; message: string }
  | { type: 'exit'; status?: number; signal?: string; error?: string }
  | { type: 'observers'; count: number }
  | { type: 'pong' };

declare global {
  interface Window {
    /** The screen as text, one line per row (the browser tests read it). */
    podbridgeScreen?: () => string;
    /** The terminal's size in cells. */
    podbridgeSize?: () => { cols: number; rows: number };
    /** Drops the WebSocket as a network failure would (the browser tests' "kill the socket"). */
    podbridgeDrop?: () => void;
  }
}

export function openTerminal(open: Open): void {
  const observer = open.kind === 'observe';
  const target = open.kind === 'new' ? open.target : '';
  const storageKey = `podbridge.session.${target}`;
  document.title = observer ? 'watching — podbridge' : `${target} — podbridge`;
  $('title').textContent = observer ? 'watching a session' : target;
  const main = $('main');
  main.className = 'terminal';
  const host = el('div', { id: 'terminal' });
  const ended = el('div', { id: 'ended', hidden: true });
  main.replaceChildren(host, ended);

  const term = new Terminal({ allowProposedApi: true, cursorBlink: !observer, disableStdin: observer, scrollback: 5000, fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, monospace', fontSize: 14 });
  const fit = new FitAddon();
  const search = new SearchAddon();
  term.loadAddon(fit);
  term.loadAddon(search);
  term.loadAddon(new WebLinksAddon());
  term.loadAddon(new Unicode11Addon());
  term.unicode.activeVersion = '11';
  term.open(host);
  fit.fit();
  window.podbridgeScreen = () => {
    const buffer = term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n');
  };
  window.podbridgeSize = () => ({ cols: term.cols, rows: term.rows });
  window.podbridgeDrop = () => ws?.close(4000, 'dropped');
  // Copy with Ctrl+Shift+C (Ctrl+C stays the terminal's interrupt); paste is the browser's own.
  term.attachCustomKeyEventHandler((e) => {
    if (e.type === 'keydown' && e.ctrlKey && e.shiftKey && e.code === 'KeyC') {
      if (term.hasSelection()) void navigator.clipboard?.writeText(term.getSelection());
      return false;
    }
    return !(e.ctrlKey && e.shiftKey && e.code === 'KeyV');
  });

  const searchBox = $('search') as HTMLInputElement;
  searchBox.hidden = false;
  searchBox.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') (e.shiftKey ? search.findPrevious(searchBox.value) : search.findNext(searchBox.value)) || notice(`"${searchBox.value}" not found`);
    if (e.key === 'Escape') term.focus();
  });
  searchBox.addEventListener('input', () => void search.findNext(searchBox.value, { incremental: true }));

  let ws: WebSocket | null = null;
  let sessionId: string | null = observer ? open.session : sessionStorage.getItem(storageKey);
  /** Set once the session is over: the socket's close is then no drop. */
  let over = false;
  let attempts = 0;

  /** connected / resumed, and who is watching. */
  let state = '';
  const status = (text: string) => ($('status').textContent = text);
  const endButton = $('end') as HTMLButtonElement;
  endButton.hidden = observer;
  endButton.addEventListener('click', () => {
    if (ws?.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ type: 'end' }));
  });
  // The owner's read-only link: /observe#ID (the fragment never reaches a server or a log). It is no
  // credential: who opens it still needs `observe` where this terminal runs.
  const shareButton = $('share') as HTMLButtonElement;
  shareButton.addEventListener('click', () => {
    if (sessionId === null) return;
    const url = `${location.origin}/observe#${sessionId}`;
    term.focus(); // typing goes on into the terminal, not the button
    const copied = navigator.clipboard?.writeText(url) ?? Promise.reject(new Error('no clipboard'));
    copied.then(
      () => notice(`read-only link copied: ${url}`),
      () => notice(`read-only link (copy it): ${url}`),
    );
  });
  if (observer) {
    const banner = $('banner');
    banner.textContent = 'Read-only: you are watching someone else\'s session.';
    banner.hidden = false;
  }

  const finish = (message: string, again: 'new' | 'reconnect' | null) => {
    over = true;
    if (!observer) sessionStorage.removeItem(storageKey);
    endButton.hidden = true;
    shareButton.hidden = true;
    status('');
    const buttons: HTMLElement[] = [];
    if (again !== null && !observer) {
      const button = el('button', { type: 'button', id: 'again' }, again === 'new' ? 'New session' : 'Reconnect');
      button.addEventListener('click', () => location.reload());
      buttons.push(button);
    }
    ended.replaceChildren(el('p', { id: 'ended-message' }, message), ...buttons);
    ended.hidden = false;
  };

  let resizeTimer: number | undefined;
  term.onResize(({ cols, rows }) => {
    clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => {
      if (ws?.readyState === WebSocket.OPEN && !observer) ws.send(JSON.stringify({ type: 'resize', cols, rows }));
    }, RESIZE_COALESCE_MS);
  });
  new ResizeObserver(() => fit.fit()).observe(host);
  // Keys typed while the socket is away (a drop, a refresh, a resume restoring the screen) are held
  // and sent once the terminal is attached again, as a local terminal would; bounded, so a page left
  // reconnecting for long does not grow without limit (the oldest keys are the ones kept).
  let attached = false;
  let held: Uint8Array[] = [];
  let heldBytes = 0;
  const input = (bytes: Uint8Array) => {
    if (observer) return;
    if (attached && ws?.readyState === WebSocket.OPEN) return ws.send(bytes);
    if (heldBytes + bytes.length > HELD_INPUT_MAX) return;
    held.push(bytes);
    heldBytes += bytes.length;
  };
  const release = (socket: WebSocket) => {
    attached = true;
    for (const bytes of held) socket.send(bytes);
    held = [];
    heldBytes = 0;
  };
  term.onData((data) => input(encoder.encode(data)));
  term.onBinary((data) => input(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));

  const connect = () => {
    const query = new URLSearchParams();
    if (observer) query.set('observe', sessionId ?? '');
    else if (sessionId !== null) query.set('resume', sessionId);
    else {
      query.set('target', target);
      query.set('cols', String(term.cols));
      query.set('rows', String(term.rows));
      query.set('term', 'xterm-256color');
    }
    status(sessionId === null ? 'connecting…' : 'reconnecting…');
    const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/terminal?${query}`);
    socket.binaryType = 'arraybuffer';
    ws = socket;
    attached = false;
    socket.onmessage = (event) => {
      if (event.data instanceof ArrayBuffer) return term.write(new Uint8Array(event.data));
      const msg = JSON.parse(String(event.data)) as ServerMessage;
      switch (msg.type) {
        case 'session':
          attempts = 0;
          sessionId = msg.id;
          if (!observer) sessionStorage.setItem(storageKey, msg.id);
          state = msg.resumed ? 'resumed' : 'connected';
          shareButton.hidden = observer;
          status(state);
          // The size may have changed while we were away.
          if (!observer && (msg.resumed || term.cols > 0)) socket.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
          // A resumed terminal takes input once its screen is restored (the message after this).
          if (!msg.resumed) release(socket);
          term.focus();
          break;
        case 'screen':
          term.reset();
          term.write(msg.data);
          if (!observer) release(socket);
          break;
        case 'notice':
          notice(msg.message);
          break;
        case 'observers':
          status(msg.count > 0 ? `${msg.count} watching` : state);
          break;
        case 'error':
          finish(msg.message, 'new');
          break;
        case 'exit':
          finish(msg.error ?? (msg.signal !== undefined ? `killed by signal ${msg.signal}` : `exited with status ${msg.status ?? 0}`), 'new');
          break;
        case 'pong':
          break;
      }
    };
    socket.onclose = (event) => {
      if (ws !== socket || over) return;
      if (event.code === 4004) return finish(observer ? 'the session has ended' : 'the session has ended (its grace period ran out)', 'new');
      if (event.code === 4001 || event.code === 4003 || event.code === 4008) return finish(event.reason || `refused (${event.code})`, 'reconnect');
      // A drop: come back to the same session (observers to the same view).
      const delay = RECONNECT_DELAYS_MS[Math.min(attempts, RECONNECT_DELAYS_MS.length - 1)];
      attempts++;
      status(`connection lost; reconnecting in ${Math.round((delay ?? 1000) / 1000)} s…`);
      window.setTimeout(connect, delay);
    };
  };
  connect();
}
