/**
 * Debian's Chromium driven by playwright-core (which never downloads a browser), headless, with
 * a fresh profile per launch. Pages record console errors and CSP violations so a test can assert
 * the page ran clean under its Content-Security-Policy.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export interface TestBrowser {
  browser: BrowserContext;
  /** A new tab; its console errors (CSP violations among them) go to `problems`. */
  page(): Promise<Page>;
  problems: string[];
  close(): Promise<void>;
}

export async function launchBrowser(options: { width?: number; height?: number } = {}): Promise<TestBrowser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: options.width ?? 1000, height: options.height ?? 600 },
  });
  const problems: string[] = [];
  return {
    browser: context,
    problems,
    async page() {
      const page = await context.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      return page;
    },
    async close() {
      await context.close().catch(() => undefined);
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The terminal's screen as text (the page exposes xterm's buffer for this). */
export function screen(page: Page): Promise<string> {
  return page.evaluate(() => (globalThis as unknown as { podbridgeScreen?: () => string }).podbridgeScreen?.() ?? '');
}

/** Waits until the screen matches; the error shows the screen as it was. */
export async function waitForScreen(page: Page, pattern: RegExp, ms = 30_000): Promise<string> {
  const deadline = Date.now() + ms;
  let text = '';
  while (Date.now() < deadline) {
    text = await screen(page);
    if (pattern.test(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`screen never matched ${pattern}; it shows:\n${text.replace(/\n+$/, '')}`);
}

export type { Browser, Page };

// The page's own globals, reached through strings: the tests compile without the DOM library.

/** Waits for the terminal's status line (connected, resumed, `1 watching`) to match. */
export async function waitForStatus(page: Page, pattern: RegExp, ms = 30_000): Promise<void> {
  // Polled from here: the page's CSP forbids the eval that waitForFunction(string) needs.
  const deadline = Date.now() + ms;
  let text = '';
  while (Date.now() < deadline) {
    // The page may be between documents (the login page's redirect, a reload): look again.
    const read = await Promise.all([page.locator('#status').textContent({ timeout: 1000 }), page.locator('#ended-message, #error').allTextContents()]).catch(() => null);
    if (read !== null) {
      text = read[0] ?? '';
      if (pattern.test(text)) return;
      if (read[1].length > 0) throw new Error(`waiting for status ${pattern}, the page says: ${read[1].join(' ')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`status never matched ${pattern}; it reads "${text}"`);
}

export function terminalSize(page: Page): Promise<{ cols: number; rows: number }> {
  return page.evaluate('window.podbridgeSize()') as Promise<{ cols: number; rows: number }>;
}

/** Drops the page's terminal WebSocket as a network failure would. */
export async function dropSocket(page: Page): Promise<void> {
  await page.evaluate('window.podbridgeDrop()');
}

/** The session id the page keeps in sessionStorage for this target. */
export function storedSession(page: Page, target: string): Promise<string | null> {
  return page.evaluate(`sessionStorage.getItem(${JSON.stringify(`podbridge.session.${target}`)})`) as Promise<string | null>;
}

/** What `new WebSocket(url)` in this page sees first: `message …` or `closed CODE`. */
export function tryWebSocket(page: Page, url: string): Promise<string> {
  return page.evaluate(
    `new Promise((resolve) => { const ws = new WebSocket(${JSON.stringify(url)}); ws.onmessage = (e) => resolve('message ' + String(e.data)); ws.onclose = (e) => resolve('closed ' + e.code); })`,
  ) as Promise<string>;
}
