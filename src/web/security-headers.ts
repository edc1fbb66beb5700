/**
 * The headers every response of the web door carries. The page loads only its own script and
 * stylesheet and talks only to its own origin; nothing may frame it (clickjacking a terminal is
 * typing into it). xterm.js 6 writes its measured cell sizes and theme into <style> elements it
 * creates at run time, which `style-src 'self'` alone would block: each page gets a fresh nonce
 * that the page's script puts on those elements (page/csp-nonce.ts), so no 'unsafe-inline' is
 * needed.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';

export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

export function contentSecurityPolicy(styleNonce: string | null): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    `style-src 'self'${styleNonce === null ? '' : ` 'nonce-${styleNonce}'`}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
  ].join('; ');
}

export function setSecurityHeaders(res: http.ServerResponse, tls: boolean, styleNonce: string | null = null): void {
  res.setHeader('Content-Security-Policy', contentSecurityPolicy(styleNonce));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  if (tls) res.setHeader('Strict-Transport-Security', 'max-age=31536000');
}
