/**
 * The browser page: /login (redeem a one-time link), / (pick a target), /t/TARGET (a terminal),
 * /observe#ID (watch a session read-only). Bundled by bundle.mjs; the server is src/web/.
 */
import './csp-nonce.ts';
import '@xterm/xterm/css/xterm.css';
import './app.css';
import * as api from './api.ts';
import { showPicker } from './picker.ts';
import { openTerminal } from './terminal.ts';
import { $, fail } from './ui.ts';

async function main(): Promise<void> {
  const path = location.pathname;
  if (path === '/login') return loginWithLink();
  const me = await api.me();
  if (!me.ok) return fail(me.message);
  if (me.value.canLogout) {
    const button = $('logout');
    button.hidden = false;
    button.addEventListener('click', () => void api.logout().then(() => location.replace('/')));
  }
  if (path === '/observe') {
    const id = location.hash.slice(1);
    history.replaceState(null, '', '/observe');
    return openTerminal({ kind: 'observe', session: id });
  }
  if (path.startsWith('/t/')) return openTerminal({ kind: 'new', target: decodeURIComponent(path.slice(3)) });
  return showPicker(me.value.identity);
}

async function loginWithLink(): Promise<void> {
  // The token leaves the address bar (and so the history) before anything else happens.
  const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
  history.replaceState(null, '', '/login');
  const answer = await api.login(token);
  if (!answer.ok) return fail(answer.message);
  location.replace(answer.value.target ? `/t/${encodeURIComponent(answer.value.target)}` : '/');
}

void main();
