import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Channel,
  EXEC_SUBPROTOCOLS,
  decodeFrame,
  encodeClose,
  encodeFrame,
  encodeResize,
  protocolVersion,
} from '../../src/backends/kubernetes/channel/websocket-frames.ts';
import { interpretStatus, isMissingShell, oneLine, parseStatus } from '../../src/backends/exec/kube-status.ts';

describe('kubernetes channel framing', () => {
  it('offers v5 before v4 and nothing older', () => {
    assert.deepEqual(EXEC_SUBPROTOCOLS, ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
    assert.equal(protocolVersion('v5.channel.k8s.io'), 'v5');
    assert.equal(protocolVersion('v4.channel.k8s.io'), 'v4');
    assert.equal(protocolVersion('channel.k8s.io'), null);
  });

  it('prefixes the channel byte and keeps the payload intact', () => {
    const payload = Buffer.from([0, 1, 2, 255, 10]);
    const frame = encodeFrame(Channel.stdin, payload);
    assert.deepEqual([...frame], [0, 0, 1, 2, 255, 10]);
    const decoded = decodeFrame(encodeFrame(Channel.stderr, payload));
    assert.equal(decoded?.channel, 2);
    assert.deepEqual(decoded?.payload, payload);
  });

  it('decodes the empty readiness frame as an empty payload and rejects an empty message', () => {
    assert.deepEqual(decodeFrame(Buffer.from([1])), { channel: 1, payload: Buffer.alloc(0) });
    assert.equal(decodeFrame(Buffer.alloc(0)), null);
  });

  it('encodes resize on channel 4 as {"Width","Height"}', () => {
    const frame = encodeResize(132, 43);
    assert.equal(frame[0], 4);
    assert.deepEqual(JSON.parse(frame.subarray(1).toString()), { Width: 132, Height: 43 });
  });

  it('encodes v5 CLOSE for stdin as [255, 0]', () => {
    assert.deepEqual([...encodeClose(Channel.stdin)], [255, 0]);
  });
});

describe('kubernetes Status', () => {
  it('reads Success as exit 0', () => {
    const status = parseStatus(Buffer.from('{"metadata":{},"status":"Success"}'));
    assert.ok(status);
    assert.deepEqual(interpretStatus(status), { kind: 'exit', code: 0 });
  });

  it('reads NonZeroExitCode with its ExitCode cause', () => {
    const status = parseStatus(
      JSON.stringify({
        metadata: {},
        status: 'Failure',
        message: 'command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3',
        reason: 'NonZeroExitCode',
        details: { causes: [{ reason: 'ExitCode', message: '3' }] },
      }),
    );
    assert.ok(status);
    assert.deepEqual(interpretStatus(status), { kind: 'exit', code: 3 });
  });

  it('treats a NonZeroExitCode without a usable code as a failure, never as exit 0', () => {
    const status = parseStatus({ status: 'Failure', reason: 'NonZeroExitCode', message: 'exit code ???', details: { causes: [] } });
    assert.ok(status);
    assert.deepEqual(interpretStatus(status), { kind: 'failure', reason: 'NonZeroExitCode', message: 'exit code ???' });
  });

  it('keeps the message of any other failure on one line', () => {
    const status = parseStatus({
      status: 'Failure',
      reason: 'InternalError',
      code: 500,
      message: 'Internal error occurred: error executing command in container:\nfailed to exec in container',
    });
    assert.ok(status);
    assert.deepEqual(interpretStatus(status), {
      kind: 'failure',
      reason: 'InternalError',
      message: 'Internal error occurred: error executing command in container: failed to exec in container',
    });
  });

  it('parses the Status body of a refused request (403) with its RBAC message', () => {
    const body = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "web-1" is forbidden: User "alice" cannot create resource "pods/exec" in API group "" in the namespace "team-a"',
      reason: 'Forbidden',
      details: { name: 'web-1', kind: 'pods' },
      code: 403,
    };
    const status = parseStatus(Buffer.from(JSON.stringify(body)));
    assert.equal(status?.code, 403);
    assert.equal(status?.message, body.message);
  });

  it('returns null for what is not a Status', () => {
    assert.equal(parseStatus(Buffer.from('not json')), null);
    assert.equal(parseStatus(Buffer.from('{"kind":"Pod"}')), null);
    assert.equal(parseStatus(null), null);
    assert.equal(parseStatus({ status: 42 }), null);
  });

  it('recognises the runtime words for a missing /bin/sh', () => {
    assert.ok(
      isMissingShell(
        'Internal error occurred: error executing command in container: failed to exec in container: failed to start exec "abc": OCI runtime exec failed: exec failed: unable to start container process: exec: "/bin/sh": stat /bin/sh: no such file or directory: unknown',
      ),
    );
    assert.ok(isMissingShell('exec: "sh": executable file not found in $PATH'));
    assert.ok(!isMissingShell('container not running (CrashLoopBackOff)'));
  });

  it('flattens and caps text to one line', () => {
    assert.equal(oneLine('a\n  b\tc  '), 'a b c');
    assert.equal(oneLine('x'.repeat(50), 10), `${'x'.repeat(9)}…`);
  });
});
