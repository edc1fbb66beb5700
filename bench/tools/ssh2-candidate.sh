#!/usr/bin/env bash
# Makes an A/B candidate for a change inside node_modules/ssh2 (our patch set):
#   bench/tools/ssh2-candidate.sh DIR   -> DIR holds this tree's src/ and a node_modules of
# symlinks to ours, except ssh2, which is a real copy to edit (or to patch with `patch -p1`).
# Then: npm run bench -- --candidate DIR --only download,upload
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${1:?usage: $0 DIR}"
rm -rf "$dir"
mkdir -p "$dir/node_modules"
cp -r "$here/src" "$here/package.json" "$here/tsconfig.json" "$here/tsconfig.build.json" "$dir/"
for entry in "$here"/node_modules/* "$here"/node_modules/.bin; do
  name="$(basename "$entry")"
  [ "$name" = ssh2 ] || ln -s "$entry" "$dir/node_modules/$name"
done
cp -r "$here/node_modules/ssh2" "$dir/node_modules/ssh2"
echo "$dir/node_modules/ssh2 is a copy to change"
