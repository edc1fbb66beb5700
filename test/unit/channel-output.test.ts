/**
 * ChannelOutput's ordering rules, seen in the exact order writes reach the channel (the real
 * OpenSSH client cannot show that order: it writes stdout and stderr to two descriptors). The
 * channel here records writes and accepts each one a tick later, as ssh2 does once the window
 * allows; the behaviour with ssh2 and the OpenSSH client is in test/conformance/streams.ts.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { ServerChannel } from 'ssh2';
import { ChannelOutput } from '../../src/ssh/channel-output.ts';

interface Record {
  stream: 'stdout' | 'stderr';
  text: string;
}

/** Records writes in order; reports the most writes ever outstanding at once. */
function recordingChannel() {
  const records: Record[] = [];
  let outstanding = 0;
  let maxOutstanding = 0;
  const writer = (stream: 'stdout' | 'stderr') => (chunk: Buffer, cb: () => void) => {
    records.push({ stream, text: chunk.toString() });
    outstanding++;
    maxOutstanding = Math.max(maxOutstanding, outstanding);
    setImmediate(() => {
      outstanding--;
      cb();
    });
    return true;
  };
  const channel = Object.assign(new EventEmitter(), { write: writer('stdout'), stderr: { write: writer('stderr') } });
  return { channel: channel as unknown as ServerChannel, records, maxOutstanding: () => maxOutstanding };
}

const text = (records: Record[], stream: 'stdout' | 'stderr') => records.filter((r) => r.stream === stream).map((r) => r.text).join('');

describe('ChannelOutput', () => {
  it('TTY: a bridge line goes in at the next line start of the terminal stream, never inside a line, and never holds the command back', async () => {
    const { channel, records, maxOutstanding } = recordingChannel();
    const out = new ChannelOutput(channel, true);
    const chunks = ['one\r\ntw', 'o\r\nthr', 'ee and more', ' of three\r\nfour\r\n'];
    out.stdout.write(chunks[0]);
    out.line('podbridge: first');
    out.line('podbridge: second');
    for (const c of chunks.slice(1)) out.stdout.write(c);
    assert.equal(await out.flushed(), true);
    assert.equal(text(records, 'stdout'), chunks.join(''), 'every byte of the command, in order');
    let stdoutSoFar = '';
    for (const r of records) {
      if (r.stream === 'stdout') stdoutSoFar += r.text;
      else assert.ok(stdoutSoFar.endsWith('\n'), `bridge line ${JSON.stringify(r.text)} after ${JSON.stringify(stdoutSoFar)}`);
    }
    assert.equal(text(records, 'stderr'), 'podbridge: first\r\npodbridge: second\r\n');
    // "one\r\ntw" was already on its way; both lines went in at the next line start, after "o\r\n",
    // not after the whole output.
    assert.deepEqual(records.slice(0, 4).map((r) => r.text), ['one\r\ntw', 'o\r\n', 'podbridge: first\r\n', 'podbridge: second\r\n']);
    assert.equal(maxOutstanding(), 1, 'one write at a time across both streams');
  });

  it('TTY: output with no line end at all passes while the line waits; once the command is quiet the line starts a fresh line', async () => {
    const { channel, records } = recordingChannel();
    const out = new ChannelOutput(channel, true);
    out.stdout.write('$ prompt-without-newline');
    out.stdout.write(' still no newline');
    out.line('podbridge: notice');
    assert.equal(await out.flushed(), true);
    assert.deepEqual(records.map((r) => r.text), ['$ prompt-without-newline', ' still no newline', '\r\npodbridge: notice\r\n']);
  });

  it("no TTY: the final line follows the command's stderr, on a fresh line when the command left one open; stdout is untouched", async () => {
    const { channel, records, maxOutstanding } = recordingChannel();
    const out = new ChannelOutput(channel, false);
    out.stdout.write('data without newline');
    out.stderr.write('warning: half a line');
    out.line('podbridge: session ended: idle for 3 s');
    assert.equal(await out.flushed(), true);
    assert.equal(text(records, 'stdout'), 'data without newline');
    assert.equal(text(records, 'stderr'), 'warning: half a line\npodbridge: session ended: idle for 3 s\n');
    assert.equal(maxOutstanding(), 1);
  });

  it('a closed channel releases every writer and flushed() says false', async () => {
    const { channel } = recordingChannel();
    const out = new ChannelOutput(channel, false);
    channel.emit('close');
    assert.equal(await out.flushed(), false);
    assert.equal(out.stdout.destroyed, true);
    assert.equal(out.stderr.destroyed, true);
  });
});
