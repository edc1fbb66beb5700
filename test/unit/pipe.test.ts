import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pump } from '../../src/pipe.ts';

/** A sink that accepts one chunk per `tick` ms: a slow SSH reader. */
function slowSink(tickMs: number, seen: Buffer[]): Writable {
  return new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _enc, cb) {
      seen.push(chunk);
      setTimeout(cb, tickMs);
    },
  });
}

describe('pump', () => {
  it('moves every byte in order and ends the sink only when asked', async () => {
    const chunks = Array.from({ length: 200 }, (_, i) => Buffer.from(`chunk-${i};`));
    const seen: Buffer[] = [];
    const sink = slowSink(0, seen);
    assert.equal(await pump(Readable.from(chunks), sink, { end: false }), 'ended');
    assert.equal(Buffer.concat(seen).toString(), Buffer.concat(chunks).toString());
    assert.equal(sink.writableEnded, false);
    assert.equal(await pump(Readable.from([Buffer.from('x')]), sink, { end: true }), 'ended');
    assert.equal(sink.writableEnded, true);
  });

  it('applies backpressure: a fast producer into a slow sink stays within the high-water marks', async () => {
    let produced = 0;
    let maxAhead = 0;
    const seen: Buffer[] = [];
    const sink = slowSink(2, seen);
    const chunk = Buffer.alloc(8 * 1024);
    const source = new Readable({
      highWaterMark: 16 * 1024,
      read() {
        if (produced >= 4 * 1024 * 1024) return this.push(null);
        produced += chunk.length;
        const consumed = seen.reduce((n, b) => n + b.length, 0);
        maxAhead = Math.max(maxAhead, produced - consumed);
        this.push(chunk);
      },
    });
    const timer = setTimeout(() => source.destroy(), 20_000);
    assert.equal(await pump(source, sink, { end: true }), 'ended');
    clearTimeout(timer);
    assert.equal(seen.reduce((n, b) => n + b.length, 0), 4 * 1024 * 1024);
    // source hwm + sink hwm + one chunk in flight each side: never megabytes.
    assert.ok(maxAhead <= 64 * 1024, `producer ran ${maxAhead} bytes ahead of the consumer`);
  });

  it('stops at once when aborted and leaves the source paused', async () => {
    const source = new PassThrough();
    const seen: Buffer[] = [];
    const ac = new AbortController();
    const p = pump(source, slowSink(0, seen), { end: true, signal: ac.signal });
    source.write('a');
    await new Promise((r) => setImmediate(r));
    ac.abort();
    assert.equal(await p, 'aborted');
    source.write('b');
    await new Promise((r) => setImmediate(r));
    assert.equal(Buffer.concat(seen).toString(), 'a');
    assert.equal(source.isPaused(), true);
  });

  it('resolves "aborted" when the sink closes under it', async () => {
    const source = new PassThrough();
    const sink = new PassThrough();
    const p = pump(source, sink, { end: false });
    sink.destroy();
    assert.equal(await p, 'aborted');
  });
});
