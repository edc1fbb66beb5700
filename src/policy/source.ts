/**
 * The policy in force, kept current: loaded at start (a bad file stops the bridge: better no
 * bridge than one that guesses), reloaded on demand (the server wires SIGHUP to reload()) and
 * when the file changes. A bad file at reload is logged and the last good policy stays: a typo
 * saved at 3 a.m. must neither lock everyone out nor let anyone in. Subscribers (the SSH server)
 * hear of every change: open connections re-resolve their credential then, and at every new
 * session, so a removed key or a revoked certificate stops working at once.
 *
 * Change detection watches the file's DIRECTORY, not the file: editors (vim, sed -i) replace the
 * file by renaming a new one over it, which ends a watch on the old inode, and a Kubernetes
 * ConfigMap volume swaps a `..data` symlink next to the file without touching the file's own
 * name. Any event in the directory schedules one debounced read; a content digest decides
 * whether anything really changed, so unrelated files in the directory cost one read, and a
 * broken file is reported once, not on every event.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.ts';
import { fromAuthorizedKeys } from './authorized-keys.ts';
import { PolicyError } from './policy-errors.ts';
import { untrustedFileProblem } from './file-trust.ts';
import { digestOf, parsePolicy } from './load.ts';
import type { Policy, PolicyKind } from './types.ts';

export interface PolicySourceOptions {
  file: string;
  /** policy-file: the YAML policy; authorized-keys: a plain authorized_keys file. */
  kind: PolicyKind;
  log: Logger;
  /** Reload when the file changes; default true. */
  watch?: boolean;
  /** Quiet time after the last change event before reading; default 300 ms (editors write in bursts). */
  debounceMs?: number;
  /** Refuse a file (or a directory above it) that others could write, as sshd's StrictModes; default true. */
  strictModes?: boolean;
  /** Called after a new policy replaced the previous one. */
  onChange?: (policy: Policy, previous: Policy) => void;
}

export type ReloadResult = { ok: true; changed: boolean; policy: Policy } | { ok: false; error: PolicyError };

export class PolicySource {
  private policy: Policy;
  /** Digest of the last text that failed to load: not reported again until it changes. */
  private failedDigest: string | null = null;
  private readonly watchers = new Map<string, fs.FSWatcher>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly listeners = new Set<(policy: Policy, previous: Policy) => void>();
  private readonly log: Logger;

  /** Loads the file now; throws PolicyError when it cannot be used. */
  static open(options: PolicySourceOptions): PolicySource {
    return new PolicySource(options);
  }

  private constructor(private readonly options: PolicySourceOptions) {
    this.log = options.log.child({ policy: options.file });
    const read = this.read();
    if (!read.ok) throw read.error;
    try {
      this.policy = this.build(read.text);
    } catch (err) {
      throw asPolicyError(err, options.file);
    }
    this.logLoaded(this.policy, 'start');
    if (options.watch ?? true) this.refreshWatchers();
  }

  current(): Policy {
    return this.policy;
  }

  /** Calls `listener` after every change of the policy in force; returns the unsubscribe. */
  subscribe(listener: (policy: Policy, previous: Policy) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-reads the file; on any problem keeps the current policy and logs why. */
  reload(reason = 'requested'): ReloadResult {
    return this.load(reason, false);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private load(reason: string, fromWatch: boolean): ReloadResult {
    const read = this.read();
    if (this.options.watch ?? true) this.refreshWatchers();
    if (!read.ok) return this.failed(read.error, reason, digestOf(`unreadable:${read.error.message}`), fromWatch);
    const digest = digestOf(read.text);
    if (digest === this.policy.digest) {
      this.failedDigest = null;
      this.log.debug({ reason }, 'policy unchanged');
      return { ok: true, changed: false, policy: this.policy };
    }
    let next: Policy;
    try {
      next = this.build(read.text);
    } catch (err) {
      return this.failed(asPolicyError(err, this.options.file), reason, digest, fromWatch);
    }
    const previous = this.policy;
    this.policy = next;
    this.failedDigest = null;
    this.logLoaded(next, reason);
    for (const listener of [this.options.onChange, ...this.listeners]) {
      try {
        listener?.(next, previous);
      } catch (err) {
        this.log.error({ err }, 'policy change listener failed');
      }
    }
    return { ok: true, changed: true, policy: next };
  }

  private failed(error: PolicyError, reason: string, digest: string, fromWatch: boolean): ReloadResult {
    // A watch event for the same broken text (another file in the directory changed) is noise.
    if (!(fromWatch && digest === this.failedDigest)) {
      this.log.error({ reason, problems: error.issues.length, err: error.message }, `policy reload failed; keeping the previous policy (${this.policy.digest.slice(0, 12)})`);
    }
    this.failedDigest = digest;
    return { ok: false, error };
  }

  private read(): { ok: true; text: string } | { ok: false; error: PolicyError } {
    const { file, kind } = this.options;
    const what = kind === 'policy-file' ? 'policy' : 'authorized_keys';
    if (this.options.strictModes ?? true) {
      const problem = untrustedFileProblem(file);
      if (problem !== null) {
        const message = `not trusted: ${problem} (sshd's StrictModes rule: whoever can write it can let themselves in)`;
        return { ok: false, error: new PolicyError(file, [{ file, line: 0, path: [], message }]) };
      }
    }
    try {
      return { ok: true, text: fs.readFileSync(file, 'utf8') };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // sshd reads a missing authorized_keys as "no keys": every login is refused until it exists.
      if (kind === 'authorized-keys' && code === 'ENOENT') return { ok: true, text: '' };
      const message = `cannot read the ${what} file: ${(err as Error).message}`;
      return { ok: false, error: new PolicyError(file, [{ file, line: 0, path: [], message }]) };
    }
  }

  private build(text: string): Policy {
    return this.options.kind === 'policy-file' ? parsePolicy(text, this.options.file) : fromAuthorizedKeys(text, this.options.file);
  }

  private logLoaded(policy: Policy, reason: string): void {
    let keys = 0;
    for (const entries of policy.keys.values()) keys += entries.length;
    this.log.info(
      { reason, kind: policy.kind, digest: policy.digest.slice(0, 12), identities: policy.identities.size, keys, cas: policy.certificateAuthorities.length, rules: policy.rules.length },
      'policy loaded',
    );
    if (policy.kind === 'authorized-keys' && keys === 0) {
      this.log.warn(`no usable keys in ${policy.file}: every login will be refused; add one with: cat ~/.ssh/id_ed25519.pub >> ${policy.file}`);
    }
    for (const w of policy.warnings) this.log.warn(w);
  }

  /** Watches the file's directory and, for a symlink, its target's directory too. */
  private refreshWatchers(): void {
    if (this.closed) return;
    const dirs = new Set([path.dirname(path.resolve(this.options.file))]);
    try {
      dirs.add(path.dirname(fs.realpathSync(this.options.file)));
    } catch {
      // Missing right now (mid-rename); the directory watch sees it come back.
    }
    for (const [dir, w] of this.watchers) {
      if (!dirs.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        // persistent: false: watching must never be what keeps the process alive.
        const w = fs.watch(dir, { persistent: false }, () => this.schedule());
        w.on('error', (err) => {
          this.log.warn({ dir, err: err.message }, 'cannot watch the policy directory any more; send SIGHUP to reload');
          w.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, w);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && this.options.kind === 'authorized-keys') {
          // Not a fault on a first start: keys unknown at login are looked up in the file anew.
          this.log.info({ dir }, `${dir} does not exist yet: create it (mkdir -p -m 700 ${dir}) and add keys to ${this.options.file}; they are read at login`);
        } else {
          this.log.warn({ dir, err: (err as Error).message }, 'cannot watch the policy directory; changes apply on SIGHUP only');
        }
      }
    }
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.closed) this.load('file changed', true);
    }, this.options.debounceMs ?? 300);
    this.timer.unref();
  }
}

function asPolicyError(err: unknown, file: string): PolicyError {
  if (err instanceof PolicyError) return err;
  return new PolicyError(file, [{ file, line: 0, path: [], message: `cannot load: ${err instanceof Error ? err.message : String(err)}` }]);
}
