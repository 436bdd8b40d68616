# syntax=docker/dockerfile:1
# Warden as a container: `docker build -t warden .`, then
#   docker run -v ./warden.yaml:/etc/warden/warden.yaml:ro -p 8080:8080 warden
# The config must listen on 0.0.0.0 to be reachable from outside the container. Compose and Helm
# examples are in deploy/; README "Containers and Kubernetes" says what was tested without a runtime.

# ---- build: compile TypeScript and the better-sqlite3 native addon, then drop dev dependencies ----
# Same Debian release (bookworm, glibc) as the runtime stage, so the addon built here loads there.
FROM node:20-bookworm-slim AS build
# node-gyp needs these when better-sqlite3 has no prebuilt binary for this platform.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first, for layer caching. --ignore-scripts: the `prepare` script would build before
# the sources are here; better-sqlite3, the only dependency that needs its install script, is
# rebuilt explicitly.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
  && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime: Node and the compiled gateway, nothing else ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
# The HEALTHCHECK's target; change it with the port if warden.yaml listens elsewhere.
ENV WARDEN_HEALTH_URL=http://127.0.0.1:8080/healthz
WORKDIR /app
# package.json carries "type": "module", without which Node reads dist/ as CommonJS.
COPY --from=build --chown=root:root /app/package.json ./package.json
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
# Code owned by root, not writable by the gateway. /var/lib/warden: a writable place for a SQLite
# store (mount a volume there); replicas use PostgreSQL instead.
RUN mkdir -p /etc/warden /var/lib/warden && chown node:node /var/lib/warden
# The `node` user (uid 1000) of the official image; numeric, so `runAsNonRoot` can check it.
USER 1000:1000
EXPOSE 8080
# No curl in a slim image: Node's own fetch asks /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.WARDEN_HEALTH_URL).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve", "--config", "/etc/warden/warden.yaml"]
