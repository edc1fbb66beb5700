/**
 * The one byte pump. Every place that moves bytes between two streams (SSH channel <-> remote
 * process, in both directions, for every front door and backend) goes through `pump`, so
 * backpressure and end-of-stream ordering are decided once.
 *
 * Backpressure: when `to.write()` returns false we pause `from` until 'drain', so at most one
 * writable high-water mark plus one chunk is buffered per direction, whatever the speeds.
 */
import type { Readable, Writable } from 'node:stream';

export type PumpResult = 'ended' | 'aborted' | 'error';

export interface PumpOptions {
  /** End `to` once `from` has ended and every byte was accepted. */
  end: boolean;
  /** Stops pumping at once (the other side is gone); the promise resolves with 'aborted'. */
  signal?: AbortSignal;
  /** Called with each chunk's size as it passes: activity for idle timers, byte counts. */
  onData?: (bytes: number) => void;
}

/** Resolves when every chunk written to `to` so far has been accepted by its sink (its write
 *  callbacks have run), or false if `signal` aborts first. Writables call callbacks in order, so an
 *  empty write's callback marks the end of everything queued before it. */
export function flushed(to: Writable, signal?: AbortSignal): Promise<boolean> {
  if (to.writableEnded || to.destroyed) return Promise.resolve(false);
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => resolve(false);
    signal?.addEventListener('abort', onAbort, { once: true });
    to.write(Buffer.alloc(0), (err) => {
      signal?.removeEventListener('abort', onAbort);
      resolve(!err);
    });
  });
}

export function pump(from: Readable, to: Writable, opts: PumpOptions): Promise<PumpResult> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (result: PumpResult) => {
      if (settled) return;
      settled = true;
      from.off('data', onData);
      from.off('end', onEnd);
      from.off('error', onFromError);
      to.off('drain', onDrain);
      to.off('error', onToError);
      to.off('close', onToClose);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      opts.onData?.(chunk.length);
      if (!to.write(chunk)) from.pause();
    };
    const onDrain = () => from.resume();
    const onEnd = () => {
      void flushed(to, opts.signal).then((ok) => {
        if (!ok) return settle(opts.signal?.aborted ? 'aborted' : 'error');
        if (opts.end) to.end();
        settle('ended');
      });
    };
    const onFromError = () => settle('error');
    const onToError = () => {
      from.pause();
      settle('error');
    };
    const onToClose = () => {
      // The sink is gone: stop reading so the source's own flow control holds the producer.
      if (!settled) from.pause();
      settle('aborted');
    };
    const onAbort = () => {
      from.pause();
      settle('aborted');
    };

    if (opts.signal?.aborted) return onAbort();
    // on(), not once(): settle() removes them all, and each once() costs a wrapper object and a
    // bound function for as long as the pump runs (a session's life: 8 per session).
    from.on('data', onData);
    from.on('end', onEnd);
    from.on('error', onFromError);
    to.on('drain', onDrain);
    to.on('error', onToError);
    to.on('close', onToClose);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (from.readableEnded) onEnd();
    else from.resume();
  });
}
