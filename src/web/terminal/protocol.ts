/**
 * The terminal WebSocket's messages (docs/web.md; the contract is /work/wt/briefs/web-protocol.md):
 * binary frames carry the terminal's bytes both ways, text frames carry these JSON messages.
 */
import type { Exit } from '../../backends/backend.ts';

export type ClientMessage =
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'signal'; name: string }
  | { type: 'end' }
  | { type: 'ping' };

export type ServerMessage =
  | { type: 'session'; id: string; target: string; resumed: boolean; observer: boolean; graceSeconds: number }
  | { type: 'screen'; data: string }
  | { type: 'notice'; message: string }
  | { type: 'error'; message: string }
  | { type: 'exit'; status: number }
  | { type: 'exit'; signal: string }
  | { type: 'exit'; error: string }
  | { type: 'observers'; count: number }
  | { type: 'pong' };

export const CLOSE = Object.freeze({
  normal: 1000,
  notAuthenticated: 4001,
  forbidden: 4003,
  noSuchSession: 4004,
  limit: 4008,
});

/** Terminal sizes a page may ask for: anything else is clamped (a 0 or a million columns is a bug). */
export const SIZE_LIMITS = Object.freeze({ minCols: 2, maxCols: 1000, minRows: 1, maxRows: 500 });

/** A text frame longer than this is no message of ours. */
const MAX_MESSAGE_BYTES = 1024;

export function clampSize(cols: number, rows: number): { cols: number; rows: number } {
  const c = Number.isFinite(cols) ? Math.trunc(cols) : 80;
  const r = Number.isFinite(rows) ? Math.trunc(rows) : 24;
  return { cols: Math.min(SIZE_LIMITS.maxCols, Math.max(SIZE_LIMITS.minCols, c)), rows: Math.min(SIZE_LIMITS.maxRows, Math.max(SIZE_LIMITS.minRows, r)) };
}

/** One text frame, or null when it is not a message this protocol knows (ignored, logged at debug). */
export function parseClientMessage(text: string): ClientMessage | null {
  if (text.length > MAX_MESSAGE_BYTES) return null;
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof m !== 'object' || m === null) return null;
  const o = m as Record<string, unknown>;
  switch (o.type) {
    case 'resize':
      return typeof o.cols === 'number' && typeof o.rows === 'number' ? { type: 'resize', cols: o.cols, rows: o.rows } : null;
    case 'signal':
      return typeof o.name === 'string' && /^(SIG)?[A-Z0-9]{1,8}$/.test(o.name) ? { type: 'signal', name: o.name } : null;
    case 'end':
      return { type: 'end' };
    case 'ping':
      return { type: 'ping' };
    default:
      return null;
  }
}

export function exitMessage(exit: Exit): ServerMessage {
  if (exit.kind === 'code') return { type: 'exit', status: exit.code };
  if (exit.kind === 'signal') return { type: 'exit', signal: exit.signal };
  return { type: 'exit', error: exit.error.message };
}
