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
EXPOSE 2222
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["serve", "--listen", "0.0.0.0:2222", "--host-key", "/keys/ssh_host_ed25519_key", "--backend", "kubernetes"]
