/**
 * sshd's StrictModes for the files that decide who gets in (the policy, authorized_keys): the
 * file and every directory above it must be owned by root or by the bridge's own user, and must
 * not be writable by group or others. Otherwise anyone who can write there can add their key.
 *
 * Two exceptions keep real deployments working without weakening the rule:
 * - a directory with the sticky bit (/tmp, a Kubernetes Secret volume's tmpfs): others may
 *   create entries there but cannot rename or remove ours, so it cannot be used to swap the file;
 * - anything on a read-only mount (a Kubernetes ConfigMap or Secret volume: root-owned,
 *   `..data` symlinks, the volume directory itself 0777): nobody can write it, whatever its mode.
 * Both the path as given and the path its symlinks resolve to are checked: whoever can write a
 * directory holding a symlink on the way can point it elsewhere.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Why this file cannot be trusted, or null. A missing file is not this module's concern. */
export function untrustedFileProblem(file: string, readOnlyMounts: (p: string) => boolean = isOnReadOnlyMount): string | null {
  const given = path.resolve(file);
  let real: string;
  try {
    real = fs.realpathSync(given);
  } catch {
    return null;
  }
  // `--authorized-keys /dev/null` (nobody may log in) is a setting people use: the null device is
  // writable by all, yet nothing written to it can ever be read back as a key.
  if (real === '/dev/null') return null;
  const uid = process.getuid?.() ?? 0;
  const checked = new Set<string>();
  const check = (p: string, isFile: boolean): string | null => {
    if (checked.has(p)) return null;
    checked.add(p);
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      return null;
    }
    if (st.uid !== 0 && st.uid !== uid) {
      return `${isFile ? 'it' : `directory ${p}`} is owned by uid ${st.uid}, not by root or the bridge's user (uid ${uid}); run: chown ${uid === 0 ? 'root' : uid} ${p}`;
    }
    const writable = st.mode & 0o022;
    if (writable === 0) return null;
    if (!isFile && st.mode & 0o1000) return null; // sticky: others cannot replace our entries
    if (readOnlyMounts(p)) return null;
    const who = writable & 0o002 ? 'others' : 'its group';
    return `${isFile ? 'it' : `directory ${p}`} is writable by ${who} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}); run: chmod go-w ${p}`;
  };
  const fileProblem = check(real, true);
  if (fileProblem) return fileProblem;
  for (const leaf of new Set([given, real])) {
    for (let dir = path.dirname(leaf); ; dir = path.dirname(dir)) {
      // A directory on the given path may itself be a symlink: judge where it leads (the
      // symlink's own directory is judged on the next step up).
      let target = dir;
      try {
        target = fs.realpathSync(dir);
      } catch {
        // vanished mid-check: the read that follows reports it
      }
      const problem = check(target, false);
      if (problem) return problem;
      if (dir === path.dirname(dir)) break;
    }
  }
  return null;
}

/** True when `p` lies on a mount that is read-only (per /proc/self/mountinfo; false elsewhere). */
export function isOnReadOnlyMount(p: string): boolean {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return false;
  }
  const mount = mountFor(parseMountInfo(text), p);
  return mount !== null && mount.readOnly;
}

export interface MountEntry {
  mountPoint: string;
  readOnly: boolean;
}

/** The fields we need from mountinfo lines (proc(5)): field 5 the mount point, field 6 its options. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 6) continue;
    // Spaces, tabs, newlines and backslashes in paths are written as octal escapes (\040).
    const mountPoint = f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ mountPoint, readOnly: f[5]!.split(',').includes('ro') });
  }
  return out;
}

/** The mount that holds `p`: the last listed among the longest matching mount points. */
export function mountFor(mounts: readonly MountEntry[], p: string): MountEntry | null {
  let best: MountEntry | null = null;
  for (const m of mounts) {
    const inside = m.mountPoint === '/' || p === m.mountPoint || p.startsWith(`${m.mountPoint}/`);
    if (inside && (best === null || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}
