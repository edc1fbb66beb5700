/**
 * Start-up check that the installed dependencies carry our patch sets (patches/): ssh2
 * (docs/ssh2-patches.md), node-pty (docs/node-pty-patches.md) and @kubernetes/client-node
 * (docs/client-node-patches.md). patch-package applies them from `postinstall`; an install that
 * skipped scripts (`--ignore-scripts`, a copied node_modules, a Dockerfile without patches/)
 * would otherwise start a bridge that silently misbehaves: stalled stderr (ssh2 006), empty
 * channel-open reasons (ssh2 007), SHA-1 in server-sig-algs (ssh2 001), the last output of a
 * local terminal lost at exit (node-pty 001), 21 MB more heap and a full collection's work
 * doubled (client-node 001). Each patch leaves a line that only the patched file contains;
 * reading a handful of files once at start-up is cheap, and none of their code is called.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { BridgeError } from './errors.ts';

export interface PatchMarker {
  /** The patch's number in its file name (`ssh2+1.17.0+006+...patch`). */
  patch: string;
  /** The file the patch changes, relative to the package root. */
  file: string;
  /** A line only the patched file contains. */
  text: string;
}

export interface PatchedPackage {
  name: string;
  /** The release the patches are made for (their file names say it too). */
  version: string;
  /** Where the patches are described. */
  doc: string;
  /** One marker per patch. A new patch adds its row here; test/unit/patched-dependencies.test.ts
   *  fails for a patch in patches/ without one. */
  markers: readonly PatchMarker[];
}

export const PATCHED_PACKAGES: readonly PatchedPackage[] = [
  {
    name: 'ssh2',
    version: '1.17.0',
    doc: 'docs/ssh2-patches.md',
    markers: [
      { patch: '001', file: 'lib/protocol/Protocol.js', text: 'const DEFAULT_SERVER_SIG_ALGS = [' },
      { patch: '002', file: 'lib/protocol/constants.js', text: "require('./mlkem.js')" },
      { patch: '003', file: 'lib/server.js', text: 'const uncork = () => {' },
      { patch: '004', file: 'lib/protocol/crypto.js', text: 'function fillPadding(' },
      { patch: '005', file: 'lib/protocol/constants.js', text: "'sntrup761x25519-sha512'" },
      { patch: '006', file: 'lib/Channel.js', text: 'function resumeWrites(channel) {' },
      { patch: '007', file: 'lib/server.js', text: 'const reject = (reasonCode, description) => {' },
      { patch: '008', file: 'lib/protocol/kex.js', text: 'function agreedName(self, serverList, clientList, i) {' },
    ],
  },
  {
    name: 'node-pty',
    version: '1.1.0',
    doc: 'docs/node-pty-patches.md',
    markers: [{ patch: '001', file: 'lib/unixTerminal.js', text: '_this._deliverRest();' }],
  },
  {
    name: '@kubernetes/client-node',
    version: '1.4.0',
    doc: 'docs/client-node-patches.md',
    markers: [{ patch: '001', file: 'dist/config.js', text: "import { ServerConfiguration } from './gen/servers.js';" }],
  },
];

/** The patched package called `name` (a typo in a test fails loudly). */
export function patchedPackage(name: string): PatchedPackage {
  const pkg = PATCHED_PACKAGES.find((p) => p.name === name);
  if (!pkg) throw new Error(`${name} is not a patched package`);
  return pkg;
}

/** The directory of the package this module imports (the one the bridge runs on). */
export function installedRoot(name: string): string {
  return path.dirname(createRequire(import.meta.url).resolve(`${name}/package.json`));
}

/** What is wrong with the package at `root`: its version, when it is not the patched one, and
 *  the patches whose marker is missing (a missing file counts as missing). */
export function inspectPackage(pkg: PatchedPackage, root = installedRoot(pkg.name)): { version: string; missing: string[] } {
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
  const missing = pkg.markers.filter((m) => !read(m.file).includes(m.text)).map((m) => m.patch);
  return { version, missing };
}

/** Throws the one-line start-up error for the first patched package at `roots` (default: the
 *  installed ones) that is not ours as patched. */
export function assertPatched(roots: Readonly<Record<string, string>> = {}): void {
  const fix = 'run npm ci in the podbridge directory, whose postinstall applies patches/ with patch-package';
  for (const pkg of PATCHED_PACKAGES) {
    const root = roots[pkg.name] ?? installedRoot(pkg.name);
    const { version, missing } = inspectPackage(pkg, root);
    if (version !== pkg.version) {
      throw new BridgeError('internal', `the installed ${pkg.name} is ${version} but our patches (patches/, ${pkg.doc}) are for ${pkg.version}: ${fix}`, { detail: { [pkg.name]: root } });
    }
    if (missing.length > 0) {
      throw new BridgeError('internal', `the installed ${pkg.name} lacks our patch${missing.length > 1 ? 'es' : ''} ${missing.join(', ')} (patches/, ${pkg.doc}): ${fix}`, { detail: { [pkg.name]: root } });
    }
  }
}
