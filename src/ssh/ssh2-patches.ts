/**
 * Start-up check that the installed ssh2 carries our patch set (patches/, docs/ssh2-patches.md).
 * patch-package applies it from `postinstall`; an install that skipped scripts (`--ignore-scripts`,
 * a copied node_modules, a Dockerfile without patches/) would otherwise start a bridge that
 * silently misbehaves: stalled stderr (006), empty channel-open reasons (007), SHA-1 in
 * server-sig-algs (001). Each patch leaves a line that only the patched file contains; reading
 * a handful of ssh2's files once at start-up is cheap, and no ssh2 internals are called.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { BridgeError } from '../errors.ts';

/** The ssh2 release the patches are made for (their file names say it too). */
export const SSH2_PATCHED_VERSION = '1.17.0';

/** One marker per patch: `text` is in ssh2's `file` (relative to its package root) only when the
 *  patch is applied. A new patch adds its row here; test/unit/ssh2-patch-check.test.ts fails for
 *  a patch in patches/ without one. */
export const SSH2_PATCH_MARKERS: readonly { patch: string; file: string; text: string }[] = [
  { patch: '001', file: 'lib/protocol/Protocol.js', text: 'const DEFAULT_SERVER_SIG_ALGS = [' },
  { patch: '002', file: 'lib/protocol/constants.js', text: "require('./mlkem.js')" },
  { patch: '003', file: 'lib/server.js', text: 'const uncork = () => {' },
  { patch: '004', file: 'lib/protocol/crypto.js', text: 'function fillPadding(' },
  { patch: '005', file: 'lib/protocol/constants.js', text: "'sntrup761x25519-sha512'" },
  { patch: '006', file: 'lib/Channel.js', text: 'function resumeWrites(channel) {' },
  { patch: '007', file: 'lib/server.js', text: 'const reject = (reasonCode, description) => {' },
];

/** The directory of the ssh2 package this module imports (the one the bridge runs on). */
export function installedSsh2Root(): string {
  return path.dirname(createRequire(import.meta.url).resolve('ssh2/package.json'));
}

/** What is wrong with the ssh2 at `root`: its version, when it is not the patched one, and the
 *  patches whose marker is missing (a missing file counts as missing). */
export function inspectSsh2(root: string): { version: string; missing: string[] } {
  const version = String((JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version?: unknown }).version);
  const files = new Map<string, string>();
  const read = (file: string): string => {
    if (!files.has(file)) {
      try {
        files.set(file, fs.readFileSync(path.join(root, file), 'utf8'));
      } catch {
        files.set(file, '');
      }
    }
    return files.get(file)!;
  };
  const missing = SSH2_PATCH_MARKERS.filter((m) => !read(m.file).includes(m.text)).map((m) => m.patch);
  return { version, missing };
}

/** Throws the one-line start-up error when the ssh2 at `root` is not ours as patched. */
export function assertSsh2Patched(root = installedSsh2Root()): void {
  const { version, missing } = inspectSsh2(root);
  const fix = 'run npm ci in the podbridge directory, whose postinstall applies patches/ with patch-package';
  if (version !== SSH2_PATCHED_VERSION) {
    throw new BridgeError('internal', `the installed ssh2 is ${version} but our patches (patches/, docs/ssh2-patches.md) are for ${SSH2_PATCHED_VERSION}: ${fix}`, { detail: { ssh2: root } });
  }
  if (missing.length > 0) {
    throw new BridgeError('internal', `the installed ssh2 lacks our patch${missing.length > 1 ? 'es' : ''} ${missing.join(', ')} (patches/, docs/ssh2-patches.md): ${fix}`, { detail: { ssh2: root } });
  }
}
