#!/usr/bin/env bash
# Builds (once) a minimal Debian 13 "trixie" root holding OpenSSH 10's client and ssh-audit 3.x,
# the real peers for the post-quantum key exchange and audit tests (Debian 12's are 9.2 and 2.5).
# The root lives outside the repository so every clone and CI run on this machine reuses it:
#   PODBRIDGE_DEBIAN13_ROOT (default /var/cache/podbridge/debian13-root).
# Idempotent: a root that is complete (marker file) is left alone. Needs root and debootstrap.
set -euo pipefail
root="${PODBRIDGE_DEBIAN13_ROOT:-/var/cache/podbridge/debian13-root}"
marker="$root/.podbridge-complete"
if [ -f "$marker" ]; then
  echo "debian13 root: cached at $root"
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends debootstrap </dev/null
fi
# A half-built root (interrupted run) is rebuilt from scratch.
rm -rf "$root.tmp"
mkdir -p "$(dirname "$root")"
echo "debian13 root: building at $root (debootstrap trixie, a few minutes once)"
debootstrap --variant=minbase --include=openssh-client,ssh-audit trixie "$root.tmp" http://deb.debian.org/debian </dev/null
# Drop the package cache: only the binaries are needed.
rm -rf "$root.tmp/var/cache/apt/archives/"*.deb
rm -rf "$root"
mv "$root.tmp" "$root"
chroot "$root" ssh -V
touch "$marker"
