import type { Identity } from '../../src/identity.ts';

/** An identity as authorized_keys mode produces it: everything permitted, the bridge's own credentials. */
export function testIdentity(name = 'alice'): Identity {
  return {
    name,
    keyFingerprint: 'SHA256:test',
    keyComment: null,
    kubernetes: null,
    groups: [],
    source: { kind: 'key', listedAt: 'test:1' },
    forcedCommand: null,
    permits: { pty: true, portForwarding: true },
  };
}
