#!/usr/bin/env bash
# Builds (once) two local stand-ins for the official node:*-bookworm-slim image, so CI can run the
# real Dockerfile with `docker build` although no image registry is reachable:
#   runtime: Debian 12 minbase + ca-certificates + this machine's node binary (the Dockerfile's
#            NODE_IMAGE): what node:20-bookworm-slim holds that podbridge uses at run time;
#   build:   the same + python3, make, g++, tini, npm and Node's headers (the Dockerfile's
#            BUILD_IMAGE): what node:20-bookworm-slim holds after the Dockerfile's apt-get step,
#            which needs the network and is skipped when these are present.
# Node's major version is the host's (`command -v node`); the image test checks it inside.
# The roots live outside the repository so every clone and CI run on this machine reuses them:
# /var/cache/podbridge/bookworm-node-root and bookworm-node-build-root.
# test/e2e/image.test.ts imports them into its own dockerd. Idempotent (marker files); a root
# built for another node version is rebuilt. Needs root and debootstrap.
set -euo pipefail
dir=/var/cache/podbridge
runtime="$dir/bookworm-node-root"
build="$dir/bookworm-node-build-root"
node_bin=$(readlink -f "$(command -v node)")
node_version=$("$node_bin" --version)
node_prefix=$(dirname "$(dirname "$(command -v node)")")
stamp="node $node_version"

if [ -f "$runtime/.podbridge-complete" ] && [ -f "$build/.podbridge-complete" ] \
   && [ "$(cat "$runtime/.podbridge-complete")" = "$stamp" ] && [ "$(cat "$build/.podbridge-complete")" = "$stamp" ]; then
  echo "image base roots: cached at $runtime and $build ($stamp)"
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends debootstrap </dev/null
fi
# The Debian mirror this machine's apt uses (deb822 .sources or one-line .list), else Debian's.
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }')
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '/^deb / && $2 !~ /security/ { print $2; exit }')
fi
mirror="${mirror:-http://deb.debian.org/debian}"

# Copies this machine's node (and, for the build root, npm and the headers) into a root.
add_node() {
  local root="$1" with_npm="$2"
  install -m 0755 "$node_bin" "$root/usr/local/bin/node"
  # The binary links only to libc, libstdc++ and libgcc_s (checked: the loader must find them).
  chroot "$root" /usr/local/bin/node --version >/dev/null
  if [ "$with_npm" = yes ]; then
    local npm_dir
    npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
    mkdir -p "$root/usr/local/lib/node_modules" "$root/usr/local/include"
    cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
    cp -a "$node_prefix/include/node" "$root/usr/local/include/node"
    chroot "$root" /usr/local/bin/npm --version >/dev/null
  fi
  # The official images' user: uid and gid 1000, home /home/node.
  chroot "$root" groupadd --gid 1000 node
  chroot "$root" useradd --uid 1000 --gid node --shell /bin/sh --create-home node
}

mkdir -p "$dir"
rm -rf "$runtime.tmp" "$build.tmp"
echo "image base roots: building from $mirror (debootstrap bookworm, a few minutes once), $stamp"
debootstrap --variant=minbase --include=ca-certificates bookworm "$runtime.tmp" "$mirror" </dev/null
cp -a "$runtime.tmp" "$build.tmp"
add_node "$runtime.tmp" no
# The build root gets its packages with apt inside it, from the same mirror.
DEBIAN_FRONTEND=noninteractive chroot "$build.tmp" apt-get install -y -qq --no-install-recommends python3 make g++ tini </dev/null
add_node "$build.tmp" yes
for root in "$runtime.tmp" "$build.tmp"; do
  rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
done
rm -rf "$runtime" "$build"
mv "$runtime.tmp" "$runtime"
mv "$build.tmp" "$build"
echo "$stamp" >"$runtime/.podbridge-complete"
echo "$stamp" >"$build/.podbridge-complete"
echo "image base roots: ready ($(du -sh "$runtime" | cut -f1) runtime, $(du -sh "$build" | cut -f1) build)"
