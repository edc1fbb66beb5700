/** Who is behind an SSH connection, as established by authentication. */
export interface Identity {
  /** The name used in logs and, later, for Kubernetes impersonation. */
  name: string;
  /** SHA256 fingerprint of the key that authenticated, as OpenSSH prints it. */
  keyFingerprint: string;
  /** The comment of the matching authorized_keys line, if any (often user@host). */
  keyComment: string | null;
}
