# syntax=docker/dockerfile:1
# Build on a supported LTS (Node 20 is end-of-life); the code also runs on 20.19+.
FROM node:22-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# Our reviewed ssh2 patches (docs/ssh2-patches.md), applied by the postinstall script.
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev
# Nothing in the image that is not run: ssh2's test fixtures hold private keys (secret scanners
# flag them), node-pty ships prebuilt binaries for macOS and Windows, and the local backend's
# build tree is only needed to compile it.
RUN rm -rf node_modules/ssh2/test node_modules/ssh2/examples node_modules/node-pty/prebuilds \
      node_modules/node-pty/deps node_modules/node-pty/src node_modules/cpu-features/deps \
    && find node_modules -name '*.pem' -path '*test*' -delete \
    && ! find node_modules \( -name 'id_rsa*' -o -name 'id_dsa*' -o -name 'id_ecdsa*' -o -name 'id_ed25519*' \) | grep .

FROM node:22-bookworm-slim
# No shell tools are needed at run time: sessions run in pods, not in this container.
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Host keys live on a mounted volume (or a Kubernetes Secret) so they survive restarts.
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
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["serve"]
