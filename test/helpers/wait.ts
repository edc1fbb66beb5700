/**
 * The tests' one way to wait for something they cannot await (a log line, a count reaching zero,
 * a process going away): poll, and fail naming what was awaited. No test asserts on how long it
 * took; `timeoutMs` only bounds a wait that would otherwise hang until the runner's budget.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `check` until it holds; after `timeoutMs`, fails with `what` (a function when the message
 *  should say what was seen at that moment). */
export async function waitUntil(what: string | (() => string), check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(25);
  }
}
