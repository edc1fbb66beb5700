# The official Node images by default. CI builds this same file offline on local stand-ins for
# them (test/setup/image-base.sh, test/image/image.test.ts):
#   docker build --build-arg NODE_IMAGE=... --build-arg BUILD_IMAGE=... .
# The Node major the project is tested on (CI's offline stand-ins are made from the test machine's
# Node 20, and the image test checks the major inside matches it). Node 20 is past its end of life:
# move the machines, these defaults and the stand-ins to 22 together, never the image alone.
ARG NODE_IMAGE=node:20-bookworm-slim
ARG BUILD_IMAGE=node:20-bookworm-slim

FROM ${BUILD_IMAGE} AS build
# A toolchain for node-pty (no prebuilt binary for Linux), and tini for the runtime stage. A base
# that has them already (CI's offline stand-in, which cannot reach apt) skips the download.
RUN if ! command -v g++ >/dev/null || ! command -v make >/dev/null || ! command -v python3 >/dev/null \
       || [ ! -x /usr/bin/tini-static ]; then \
      apt-get update && apt-get install -y --no-install-recommends python3 make g++ tini \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
# npm-offline-cache.tar is there only for an offline build: an npm cache filled from this lockfile
# (CI makes it on the host; every tarball is still checked against the lockfile's integrity).
COPY package.json package-lock.json npm-offline-cache.ta[r] ./
# Our reviewed ssh2 patches (docs/ssh2-patches.md), applied by the postinstall script.
COPY patches ./patches
# node-gyp compiles against the headers installed beside node (official images have them) rather
# than downloading them.
RUN set -e; \
    prefix=$(dirname "$(dirname "$(command -v node)")"); \
    if [ -f "$prefix/include/node/node.h" ]; then export npm_config_nodedir="$prefix"; fi; \
    if [ -f npm-offline-cache.tar ]; then \
      mkdir /tmp/npm-cache && tar -xf npm-offline-cache.tar -C /tmp/npm-cache && rm npm-offline-cache.tar; \
      npm ci --no-audit --no-fund --offline --cache /tmp/npm-cache; \
      rm -rf /tmp/npm-cache; \
    else \
      npm ci --no-audit --no-fund; \
    fi
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev
# Nothing in the image that is not run: ssh2's test fixtures hold private keys (secret scanners
# flag them), prebuilt binaries for other platforms (node-pty's macOS and Windows ones among
# them), and the native modules' sources and build trees, needed only to compile them. The last
# line fails the build if a private key file is still there.
RUN set -e; \
    here=$(node -p 'process.platform + "-" + process.arch'); \
    rm -rf node_modules/ssh2/test node_modules/ssh2/examples \
      node_modules/node-pty/deps node_modules/node-pty/src node_modules/node-pty/third_party \
      node_modules/node-pty/node-addon-api node_modules/cpu-features/deps node_modules/cpu-features/src; \
    for d in $(find node_modules -type d -path '*/prebuilds/*' -prune); do \
      [ "$(basename "$d")" = "$here" ] || rm -rf "$d"; \
    done; \
    find node_modules -type d \( -name obj.target -o -name .deps \) -path '*/build/*' -prune -exec rm -rf {} +; \
    find node_modules -name '*.a' -path '*/build/*' -delete; \
    find node_modules -name '*.pem' -path '*test*' -delete; \
    ! find node_modules \( -name 'id_rsa*' -o -name 'id_dsa*' -o -name 'id_ecdsa*' -o -name 'id_ed25519*' \) | grep .

FROM ${NODE_IMAGE}
# tini as PID 1: it forwards SIGTERM to the bridge (which drains) and reaps orphaned processes
# (the local backend's sessions can leave some). The static build needs nothing from the base.
COPY --from=build /usr/bin/tini-static /usr/bin/tini
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Host keys: a mounted volume or Kubernetes Secret at /keys, so they survive restarts. Files may
# be owner-only, or root-owned 0440 with a group the bridge is in (docs/deployment.md).
RUN mkdir /keys && chown node:node /keys
VOLUME ["/keys"]
USER node
# Configuration by PODBRIDGE_* (or a file named by PODBRIDGE_CONFIG): the command carries no
# flags, because flags would win over the environment.
ENV PODBRIDGE_LISTEN=0.0.0.0:2222 \
    PODBRIDGE_HOST_KEY=/keys \
    PODBRIDGE_BACKEND=kubernetes \
    PODBRIDGE_DIAG_LISTEN=0.0.0.0:9090
EXPOSE 2222 9090
# The drain rule (docs/operations.md): SIGTERM, exit within shutdown-grace + terminate-grace +
# 2 s = 9 s by default, inside docker stop's 10 s.
STOPSIGNAL SIGTERM
# /healthz on whatever port PODBRIDGE_DIAG_LISTEN names (a changed port keeps the check working).
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "const p = (process.env.PODBRIDGE_DIAG_LISTEN || '9090').split(':').pop(); fetch('http://127.0.0.1:' + p + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/cli.js"]
CMD ["serve"]
